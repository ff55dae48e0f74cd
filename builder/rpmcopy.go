package builder

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The daemon runs as root and copies a submitter's SRPM, spec and
// sources into a buildroot: it must copy nothing the submitter could not
// read. These copies open every file and directory without following a
// symbolic link below the path given, and check the permission bits of
// what they opened (owner and other bits only, as checkSource), so a file
// swapped for a link between the check and the copy is never read.

// checkRPMRequest validates the RPM part of a request at submission.
func checkRPMRequest(req *Request, owner int) error {
	r := req.RPMRequest
	switch {
	case r.SRPM != "" && r.Spec != "":
		return errors.New("give an SRPM or a spec, not both")
	case r.SRPM == "" && r.Spec == "":
		return errors.New("an RPM build needs an SRPM or a spec")
	case r.Sources != "" && r.Spec == "":
		return errors.New("sources go with a spec")
	case len(req.Command) > 0:
		return errors.New("an RPM build runs rpmbuild; it takes no command")
	case req.Source != "":
		return errors.New("an RPM build takes --sources with --spec, not --source")
	}
	for _, f := range []struct{ what, path string }{{"SRPM", r.SRPM}, {"spec", r.Spec}} {
		if f.path == "" {
			continue
		}
		if err := checkFile(f.what, f.path, owner); err != nil {
			return err
		}
	}
	if r.SRPM != "" && !strings.HasSuffix(r.SRPM, ".src.rpm") {
		return fmt.Errorf("SRPM %s does not end in .src.rpm", r.SRPM)
	}
	if r.Sources != "" {
		if !filepath.IsAbs(r.Sources) {
			return fmt.Errorf("sources %q is not an absolute path", r.Sources)
		}
		if err := checkPath(r.Sources, owner); err != nil {
			return fmt.Errorf("sources %s: %v", r.Sources, err)
		}
	}
	if strings.ContainsAny(r.Target, " \t\n'\"\\$`;&|") {
		return fmt.Errorf("target %q: want an architecture", r.Target)
	}
	return nil
}

// checkFile checks that owner may read the regular file at path.
func checkFile(what, path string, owner int) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%s %q is not an absolute path", what, path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %v", what, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s %s is not a regular file", what, path)
	}
	if err := checkPath(filepath.Dir(path), owner); err != nil {
		return fmt.Errorf("%s %s: %v", what, path, err)
	}
	if owner != 0 {
		st, ok := fi.Sys().(*syscall.Stat_t)
		bits := uint32(fi.Mode().Perm())
		if ok && int(st.Uid) == owner {
			bits >>= 6
		}
		if bits&4 == 0 {
			return fmt.Errorf("%s %s: uid %d may not read it", what, path, owner)
		}
	}
	return nil
}

// checkPath checks that owner may reach and read path (root may read all).
func checkPath(path string, owner int) error {
	if owner == 0 {
		return nil
	}
	for p := path; ; p = filepath.Dir(p) {
		if err := canRead(p, owner, p == path); err != nil {
			return err
		}
		if p == "/" {
			return nil
		}
	}
}

// fdReadable checks the permission bits of an open file for uid.
func fdReadable(fd int, uid int, dir bool) (unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return st, err
	}
	if uid == 0 {
		return st, nil
	}
	mode := st.Mode & 0o777
	var bits uint32
	if int(st.Uid) == uid {
		bits = (mode >> 6) & 7
	} else {
		bits = mode & 7
	}
	need := uint32(4)
	if dir {
		need = 5
	}
	if bits&need != need {
		return st, fmt.Errorf("uid %d may not read it", uid)
	}
	return st, nil
}

// copyFileAs copies the regular file src to dst (mode 0644, owned by
// uid:gid) if reader may read it.
func copyFileAs(src, dst string, reader, uid, gid int) error {
	if err := checkPath(filepath.Dir(src), reader); err != nil {
		return fmt.Errorf("%s: %v", src, err)
	}
	fd, err := unix.Open(src, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	f := os.NewFile(uintptr(fd), src)
	defer f.Close()
	return copyOpenFile(f, dst, reader, uid, gid)
}

func copyOpenFile(f *os.File, dst string, reader, uid, gid int) error {
	st, err := fdReadable(int(f.Fd()), reader, false)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name(), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s is not a regular file", f.Name())
	}
	os.Remove(dst)
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, f); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Lchown(dst, uid, gid)
}

// copyTreeAs copies the directory (or file) src into dst as mock copies
// --sources: the tree with its symbolic links kept as links, owned by
// uid:gid, reading only what reader may read.
func copyTreeAs(src, dst string, reader, uid, gid int) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return copyFileAs(src, filepath.Join(dst, filepath.Base(src)), reader, uid, gid)
	}
	if err := checkPath(src, reader); err != nil {
		return fmt.Errorf("%s: %v", src, err)
	}
	fd, err := unix.Open(src, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	return copyDirFD(fd, src, dst, reader, uid, gid, 0)
}

// copyDirFD copies the open directory fd (closing it) into dst.
func copyDirFD(fd int, name, dst string, reader, uid, gid, depth int) error {
	d := os.NewFile(uintptr(fd), name)
	defer d.Close()
	if depth > 64 {
		return fmt.Errorf("%s: too deep", name)
	}
	if _, err := fdReadable(fd, reader, true); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	if err := os.Lchown(dst, uid, gid); err != nil {
		return err
	}
	ents, err := d.ReadDir(-1)
	if err != nil {
		return err
	}
	for _, e := range ents {
		child, to := filepath.Join(name, e.Name()), filepath.Join(dst, e.Name())
		switch {
		case e.Type()&os.ModeSymlink != 0:
			target, err := readlinkat(fd, e.Name())
			if err != nil {
				return err
			}
			os.Remove(to)
			if err := os.Symlink(target, to); err != nil {
				return err
			}
			os.Lchown(to, uid, gid)
		case e.IsDir():
			cfd, err := unix.Openat(fd, e.Name(), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("open %s: %w", child, err)
			}
			if err := copyDirFD(cfd, child, to, reader, uid, gid, depth+1); err != nil {
				return err
			}
		case e.Type().IsRegular():
			cfd, err := unix.Openat(fd, e.Name(), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("open %s: %w", child, err)
			}
			f := os.NewFile(uintptr(cfd), child)
			err = copyOpenFile(f, to, reader, uid, gid)
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func readlinkat(dirfd int, name string) (string, error) {
	buf := make([]byte, 4096)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
