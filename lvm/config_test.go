package lvm

import "testing"

func TestConfigDefaultsAndPaths(t *testing.T) {
	c := Config{Root: "f41", Basedir: "/var/lib/mock"}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		c.ChrootDir("head"):   "/var/lib/mock/f41/root",
		c.ChrootDir("b1"):     "/var/lib/mock/f41-b1/root",
		c.SnapinfoPath("b1"):  "/var/lib/mock/.snapinfo-mock.f41.b1",
		c.InitLockPath():      "/var/lib/mock/.lvm-mock.f41.lock",
		c.PoolLockPath():      "/var/lib/mock/.lvm-pool-mock.f41.lock",
		c.Pool:                "mockbuild",
		c.MkfsCommand:         "mkfs.ext4",
		c.UniqueExt:           "head",
		c.Backend:             "file",
		c.WorkdirDir("other"): "/var/lib/mock/f41-other",
	}
	for got, w := range want {
		if got != w {
			t.Errorf("got %q, want %q", got, w)
		}
	}
	bad := Config{Root: "f41", Basedir: "relative/dir"}
	if err := bad.Normalize(); err == nil {
		t.Error("relative basedir accepted")
	}
}
