package builder

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/thinroot/thinroot/internal/fsutil"
	"github.com/thinroot/thinroot/mockcfg"
)

// ErrNoBootstrap says a config has no bootstrap command and none can be
// derived for it.
var ErrNoBootstrap = errors.New("no bootstrap command: set config_opts['thinroot']['bootstrap'], or use a dnf or yum package_manager with a chroot_setup_cmd")

// DnfBootstrap derives a bootstrap for a config without thinroot's
// bootstrap key, the way mock initializes a dnf-based chroot from the host:
// the rendered dnf.conf goes to <root>/etc/dnf/dnf.conf (and yum.conf), and
// the package manager runs with --installroot and --releasever, its common
// options and disabled plugins, and chroot_setup_cmd as its arguments.
// The dnf.conf is written under dir/<root>/ and copied in at run time; the
// returned argv is a shell program that reads ROOT from its environment.
func DnfBootstrap(cfg *mockcfg.Config, st mockcfg.Settings, dir string) ([]string, error) {
	name := pmName(st.PackageManager)
	if name == "" || len(st.ChrootSetupCmd) == 0 {
		return nil, ErrNoBootstrap
	}
	command, _, err := cfg.String(name + "_command")
	if err != nil || command == "" {
		return nil, fmt.Errorf("derive the %s bootstrap: no %s_command: %v", st.PackageManager, name, err)
	}
	opts, _, err := cfg.Strings(name + "_common_opts")
	if err != nil {
		return nil, fmt.Errorf("derive the %s bootstrap: %w", st.PackageManager, err)
	}
	plugins, _, err := cfg.Strings(name + "_disable_plugins")
	if err != nil {
		return nil, fmt.Errorf("derive the %s bootstrap: %w", st.PackageManager, err)
	}
	for _, p := range plugins {
		opts = append(opts, "--disableplugin="+p)
	}
	if fa, ok, _ := cfg.String("forcearch"); ok && fa != "" {
		opts = append(opts, "--forcearch", fa)
	}
	var head []string
	if st.Releasever != "" && st.Releasever != "None" {
		head = append(head, "--releasever", st.Releasever)
	}
	if online := cfg.Values()["online"]; online == false {
		head = append(head, "-C")
	}
	args := st.ChrootSetupCmd
	var words []string
	words = append(words, head...)
	if name == "dnf5" {
		// dnf5 wants its common options after the sub-command.
		words = append(append(words, args...), opts...)
	} else {
		words = append(append(words, opts...), args...)
	}
	conf := []byte(st.DnfConf)
	if len(conf) == 0 {
		return nil, fmt.Errorf("derive the %s bootstrap: the config has no dnf.conf", st.PackageManager)
	}
	confDir := filepath.Join(dir, st.Root)
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return nil, err
	}
	confPath := filepath.Join(confDir, "dnf.conf")
	if old, err := os.ReadFile(confPath); err != nil || !bytes.Equal(old, conf) {
		if err := fsutil.WriteFileAtomic(confPath, conf, 0o644); err != nil {
			return nil, fmt.Errorf("write dnf.conf: %w", err)
		}
	}
	var s strings.Builder
	s.WriteString(`set -e; mkdir -p "$ROOT/etc/dnf" "$ROOT/etc/yum"; `)
	fmt.Fprintf(&s, `cp %s "$ROOT/etc/dnf/dnf.conf"; cp %s "$ROOT/etc/yum/yum.conf"; `, shQuote(confPath), shQuote(confPath))
	fmt.Fprintf(&s, `exec %s --installroot "$ROOT"`, shQuote(command))
	for _, w := range words {
		s.WriteString(" " + shQuote(w))
	}
	return []string{"/bin/sh", "-c", s.String(), "thinroot-" + name + "-bootstrap"}, nil
}

// pmName maps package_manager to the name mock's option keys use.
func pmName(pm string) string {
	switch pm {
	case "dnf", "dnf4":
		return "dnf4"
	case "dnf5":
		return "dnf5"
	case "yum":
		return "yum"
	}
	return ""
}

// shQuote quotes a word for sh.
func shQuote(w string) string {
	if w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=@:+,") == "" {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}
