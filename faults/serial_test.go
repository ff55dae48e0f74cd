package faults_test

import (
	"testing"

	"github.com/thinroot/thinroot/faults"
	"github.com/thinroot/thinroot/lvm"
)

// ready is a picture of one initialized config with snapshot s1 and a
// workdir e1 cloned from it.
func ready() faults.Picture {
	p, _ := faults.Apply(faults.Picture{Pools: map[string]bool{}, Configs: map[string]*faults.ConfigPicture{
		"r": {Pool: "p", Snapshots: map[string]bool{}, Workdirs: map[string]string{},
			Current: map[string]string{"head": "", "e1": ""}},
	}}, faults.Op{Kind: "init", Root: "r"})
	p, _ = faults.Apply(p, faults.Op{Kind: "workdir-create", Root: "r", Snap: lvm.PostInit, Ext: "w"})
	p, _ = faults.Apply(p, faults.Op{Kind: "snapshot", Root: "r", Ext: "w", Name: "s1"})
	p, _ = faults.Apply(p, faults.Op{Kind: "workdir-remove", Root: "r", Ext: "w"})
	p, _ = faults.Apply(p, faults.Op{Kind: "workdir-create", Root: "r", Snap: "s1", Ext: "e1"})
	return p
}

func TestSerialModel(t *testing.T) {
	p := ready()
	if got := p.String(); got != "pool p=true  | r ready=true snaps=[postinit s1] workdirs=[e1:s1] current=[e1:s1 head:postinit]" {
		t.Fatalf("picture %q", got)
	}
	for _, c := range []struct {
		op faults.Op
		ok bool
	}{
		{faults.Op{Kind: "remove-snapshot", Root: "r", Snap: "s1"}, false}, // it has a workdir
		{faults.Op{Kind: "remove-snapshot", Root: "r", Snap: lvm.PostInit}, false},
		{faults.Op{Kind: "workdir-create", Root: "r", Snap: lvm.PostInit, Ext: "e1"}, false}, // ext taken
		{faults.Op{Kind: "snapshot", Root: "r", Ext: "e1", Name: "s1"}, false},               // name taken
		{faults.Op{Kind: "set-current", Root: "r", Ext: "head", Snap: "nope"}, false},
		{faults.Op{Kind: "rollback-to", Root: "r", Ext: "head", Snap: "s1"}, true},
		{faults.Op{Kind: "scrub", Root: "r"}, true},
	} {
		if _, ok := faults.Apply(p, c.op); ok != c.ok {
			t.Errorf("%s: ok %v, want %v", c.op, ok, c.ok)
		}
	}
	q, _ := faults.Apply(p, faults.Op{Kind: "scrub", Root: "r"})
	if q.Pools["p"] || q.Configs["r"].Ready || len(q.Configs["r"].Snapshots) != 0 || q.Configs["r"].Current["e1"] != "" {
		t.Errorf("after scrub: %s", q)
	}
	// Removing head's current snapshot moves head back to postinit.
	q, _ = faults.Apply(p, faults.Op{Kind: "workdir-remove", Root: "r", Ext: "e1"})
	q, _ = faults.Apply(q, faults.Op{Kind: "set-current", Root: "r", Ext: "head", Snap: "s1"})
	q, ok := faults.Apply(q, faults.Op{Kind: "remove-snapshot", Root: "r", Snap: "s1"})
	if !ok || q.Configs["r"].Current["head"] != lvm.PostInit {
		t.Errorf("after removing head's current snapshot: %v %s", ok, q)
	}
}

func TestExplain(t *testing.T) {
	p := ready()
	create := faults.Done{Actor: "a", Op: faults.Op{Kind: "workdir-create", Root: "r", Snap: "s1", Ext: "e2"}, OK: true}
	remove := faults.Done{Actor: "b", Op: faults.Op{Kind: "remove-snapshot", Root: "r", Snap: "s1"}, OK: true}
	rmE1 := faults.Done{Actor: "c", Op: faults.Op{Kind: "workdir-remove", Root: "r", Ext: "e1"}, OK: true}
	// Removing e1 first lets s1 go; then the workdir from s1 cannot be made.
	after, _ := faults.Apply(p, rmE1.Op)
	after, _ = faults.Apply(after, remove.Op)
	if _, ok := faults.Explain(p, []faults.Done{create, remove, rmE1}, after); ok {
		t.Error("explained a round where a workdir was cloned from a snapshot that another op removed, both reporting success")
	}
	create.OK = false
	order, ok := faults.Explain(p, []faults.Done{create, remove, rmE1}, after)
	if !ok || len(order) != 3 {
		t.Errorf("a failed clone, e1 removed, s1 removed is serial: %v %v", order, ok)
	}
	// A failure may not have an effect it is not known to leave.
	fail := faults.Done{Actor: "a", Op: faults.Op{Kind: "snapshot", Root: "r", Ext: "e1", Name: "s2"}}
	withS2, _ := faults.Apply(p, fail.Op)
	if _, ok := faults.Explain(p, []faults.Done{fail}, withS2); ok {
		t.Error("a failed snapshot that left its snapshot was explained")
	}
	fail.Maybe = []faults.Op{fail.Op}
	if _, ok := faults.Explain(p, []faults.Done{fail}, withS2); !ok {
		t.Error("a failure's known partial effect was not explained")
	}
}
