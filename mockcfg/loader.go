package mockcfg

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// DefaultConfigDir is mock's config directory.
const DefaultConfigDir = "/etc/mock"

// Error is a config error at a place in a config file.
type Error struct {
	File string // the file the error is in ("" when not in a file)
	Line int    // 1-based line in File, 0 when unknown
	Msg  string
	Err  error // underlying error, if any
}

func (e *Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.File != "":
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// ErrNotFound is wrapped by Load's error when the named config does not exist.
var ErrNotFound = errors.New("config not found")

// Loader reads mock config files the way mock does.
//
// The zero value reads /etc/mock and the invoking user's ~/.config/mock.
type Loader struct {
	// ConfigDir is the system config directory (default /etc/mock): it
	// holds site-defaults.cfg, chroot-aliases.cfg, NAME.cfg and the
	// templates that include() names relative to it.
	ConfigDir string
	// UserDir holds the user's NAME.cfg files, which win over ConfigDir's
	// (default HOME/.config/mock).
	UserDir string
	// UserConfig is read after the named config (default
	// HOME/.config/mock.cfg).
	UserConfig string
	// Home is the user's home directory (default $HOME). UserDir and
	// UserConfig default under it, and so does HOME/.mock/user.cfg, which
	// mock reads just before UserConfig.
	Home string
}

func (l *Loader) configDir() string {
	if l.ConfigDir == "" {
		return DefaultConfigDir
	}
	return l.ConfigDir
}

func (l *Loader) home() string {
	if l.Home != "" {
		return l.Home
	}
	h, _ := os.UserHomeDir()
	return h
}

func (l *Loader) userDir() string {
	if l.UserDir != "" {
		return l.UserDir
	}
	if h := l.home(); h != "" {
		return filepath.Join(h, ".config", "mock")
	}
	return ""
}

// userFiles are the per-user files read after the named config.
func (l *Loader) userFiles() []string {
	var out []string
	h := l.home()
	if h != "" {
		out = append(out, filepath.Join(h, ".mock", "user.cfg"))
	}
	switch {
	case l.UserConfig != "":
		out = append(out, l.UserConfig)
	case h != "":
		out = append(out, filepath.Join(h, ".config", "mock.cfg"))
	}
	return out
}

// notConfigs are .cfg files of the config dir that are not chroot configs.
var notConfigs = map[string]bool{"site-defaults": true, "chroot-aliases": true}

// List returns the names of the configs in ConfigDir and UserDir (files
// NAME.cfg, without site-defaults.cfg and chroot-aliases.cfg), sorted and
// without duplicates.
func (l *Loader) List() ([]string, error) {
	seen := map[string]bool{}
	for n, dir := range []string{l.configDir(), l.userDir()} {
		if dir == "" {
			continue
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			if n == 1 && errors.Is(err, os.ErrNotExist) {
				continue // no per-user configs
			}
			return nil, fmt.Errorf("list configs: %w", err)
		}
		for _, e := range ents {
			name, ok := strings.CutSuffix(e.Name(), ".cfg")
			if !ok || name == "" || notConfigs[name] {
				continue
			}
			if st, err := os.Stat(filepath.Join(dir, e.Name())); err != nil || st.IsDir() {
				continue
			}
			seen[name] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// Path returns the file Load reads for name: name itself when it ends in
// .cfg, else UserDir/NAME.cfg when that exists, else ConfigDir/NAME.cfg.
func (l *Loader) Path(name string) string {
	if strings.HasSuffix(name, ".cfg") {
		return name
	}
	if ud := l.userDir(); ud != "" {
		p := filepath.Join(ud, name+".cfg")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	// mock joins with '%s/%s.cfg', so names may hold a subdirectory (eol/...)
	return l.configDir() + "/" + name + ".cfg"
}

// Load reads config name and returns it fully rendered. Files are read in
// mock's order: built-in defaults, ConfigDir/site-defaults.cfg,
// ConfigDir/chroot-aliases.cfg, the config itself (see Path),
// HOME/.mock/user.cfg and UserConfig; missing files other than the config
// itself are skipped.
func (l *Loader) Load(name string) (*Config, error) {
	c, err := l.load(name)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	return c, nil
}

func (l *Loader) load(name string) (*Config, error) {
	if name == "" {
		return nil, fmt.Errorf("empty config name")
	}
	dir := l.configDir()
	o := newOptsDict()
	setDefaults(o)
	o.set("config_path", starlark.String(dir))
	chrootName := name
	if strings.HasSuffix(name, ".cfg") {
		chrootName = strings.TrimSuffix(filepath.Base(name), ".cfg")
	}
	o.set("chroot_name", starlark.String(chrootName))
	path := l.Path(name)
	o.set("config_file", starlark.String(path))

	run := func(file string, required bool) error {
		if _, err := os.Stat(file); err != nil {
			if !required {
				return nil
			}
			return notFound(o, name, file)
		}
		if err := runFile(o, dir, file); err != nil {
			return err
		}
		return checkMacros(o, file)
	}
	for _, f := range []string{dir + "/site-defaults.cfg", dir + "/chroot-aliases.cfg"} {
		if err := run(f, false); err != nil {
			return nil, err
		}
	}
	if err := run(path, true); err != nil {
		return nil, err
	}
	for _, f := range l.userFiles() {
		if err := run(f, false); err != nil {
			return nil, err
		}
	}
	return finishLoad(o, chrootName, path)
}

// notFound builds mock's "Non-existing Mock config" error, with the
// alternatives chroot-aliases.cfg lists for names such as epel-9-x86_64.
func notFound(o *optsDict, name, file string) error {
	msg := fmt.Sprintf("non-existing mock config %q (no file %s)", name, file)
	if nc, ok := o.get("no-config"); ok {
		if m, ok := nc.(*starlark.Dict); ok {
			if i := strings.LastIndexByte(name, '-'); i > 0 {
				if alt, ok, _ := m.Get(starlark.String(name[:i])); ok {
					if ad, ok := alt.(*starlark.Dict); ok {
						if alts, ok, _ := ad.Get(starlark.String("alternatives")); ok {
							if am, ok := alts.(*starlark.Dict); ok {
								var names []string
								for _, k := range am.Keys() {
									if ks, ok := k.(starlark.String); ok {
										names = append(names, string(ks)+name[i:])
									}
								}
								msg += "; alternatives: " + strings.Join(names, ", ")
							}
						}
					}
				}
			}
		}
	}
	return &Error{File: file, Msg: msg, Err: ErrNotFound}
}

// fileOptions let Starlark run the Python subset configs are written in.
var fileOptions = &syntax.FileOptions{
	Set:             true,
	While:           true,
	TopLevelControl: true,
	GlobalReassign:  true,
	Recursion:       true,
}

// maxSteps bounds the work one file may do (a runaway loop is an error,
// not a hang); a variable so that fuzzing can lower it.
var maxSteps uint64 = 50_000_000

// runFile runs one config file against config_opts, as mock's
// update_config_from_file does: the file (symlinks resolved) has its
// include lines replaced, then it runs with config_opts in scope. It is
// long because the steps (resolve, expand, rewrite, compile, run with a
// step limit, name the failing line) share the file's state and read best
// in one order.
func runFile(o *optsDict, configDir, file string) error {
	real := file
	if abs, err := filepath.Abs(file); err == nil {
		real = abs
	}
	if r, err := filepath.EvalSymlinks(real); err == nil {
		real = r
	}
	inc := &includer{searchPath: configDir, seen: map[string]bool{}, readFile: os.ReadFile}
	text, err := inc.expand(real, origin{}, 0)
	if err != nil {
		return err
	}
	at := func(line int) origin {
		if line >= 1 && line <= len(text.lines) {
			return text.lines[line-1]
		}
		return origin{file: real}
	}
	src, err := pyToStarlark(text.text)
	if err != nil {
		var pe *pyError
		if errors.As(err, &pe) {
			w := at(pe.line)
			return &Error{File: w.file, Line: w.line, Msg: pe.msg}
		}
		return &Error{File: real, Msg: err.Error(), Err: err}
	}
	f, err := fileOptions.Parse(real, src, 0)
	if err != nil {
		var se syntax.Error
		if errors.As(err, &se) {
			w := at(int(se.Pos.Line))
			return &Error{File: w.file, Line: w.line, Msg: "syntax error: " + se.Msg, Err: err}
		}
		return &Error{File: real, Msg: err.Error(), Err: err}
	}
	pre := starlark.StringDict{"config_opts": o, "include": includeBuiltin, "os": osModule}
	prog, err := starlark.FileProgram(f, pre.Has)
	if err != nil {
		var el resolve.ErrorList
		if errors.As(err, &el) && len(el) > 0 {
			w := at(int(el[0].Pos.Line))
			return &Error{File: w.file, Line: w.line, Msg: el[0].Msg, Err: err}
		}
		return &Error{File: real, Msg: err.Error(), Err: err}
	}
	th := &starlark.Thread{Name: real, Print: func(*starlark.Thread, string) {}}
	th.SetMaxExecutionSteps(maxSteps)
	o.thread, o.lines = th, text.lines
	defer func() { o.thread, o.lines = nil, nil }()
	defer guardThread(th)()
	if _, err := initProgram(prog, th, pre); err != nil {
		var ee *starlark.EvalError
		if errors.As(err, &ee) {
			line := 0
			for _, fr := range ee.CallStack {
				if fr.Pos.Line > 0 {
					line = int(fr.Pos.Line) // innermost wins: keep the last
				}
			}
			w := at(line)
			return &Error{File: w.file, Line: w.line, Msg: ee.Msg, Err: err}
		}
		return &Error{File: real, Msg: err.Error(), Err: err}
	}
	// mock adds the files it read (the config and its includes) to
	// config_paths; it keeps them in a set, we keep them sorted.
	paths := map[string]bool{}
	if cp, ok := o.get("config_paths"); ok {
		if it, ok := cp.(starlark.Iterable); ok {
			iter := it.Iterate()
			var x starlark.Value
			for iter.Next(&x) {
				if s, ok := x.(starlark.String); ok {
					paths[string(s)] = true
				}
			}
			iter.Done()
		}
	}
	for p := range inc.seen {
		paths[p] = true
	}
	list := make([]string, 0, len(paths))
	for p := range paths {
		list = append(list, p)
	}
	sort.Strings(list)
	o.set("config_paths", ls(list...))
	return nil
}

// initProgram runs a program, turning an engine panic into an error.
func initProgram(prog *starlark.Program, th *starlark.Thread, pre starlark.StringDict) (g starlark.StringDict, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("interpreter panic: %v", p)
		}
	}()
	return prog.Init(th, pre)
}

// includeBuiltin is include as a function. Config files run with
// config_opts, include and os (mock's namespace has os imported) in scope.
var includeBuiltin = starlark.NewBuiltin("include", includeAtRuntime)

// includeAtRuntime is reached only by an include() call that is not at the
// start of a line: mock replaces those textually and fails on the others.
func includeAtRuntime(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return nil, fmt.Errorf("include() must start its own line: mock replaces such lines with the file's text before running the config, and fails on any other call")
}

// checkMacros applies mock's check_macro_definition after each file:
// macro names must be one word and values non-empty (or None); names
// without a leading % get one.
func checkMacros(o *optsDict, file string) error {
	mv, ok := o.get("macros")
	if !ok {
		return &Error{File: file, Msg: "config_opts['macros'] is missing"}
	}
	m, ok := mv.(*starlark.Dict)
	if !ok {
		return &Error{File: file, Msg: fmt.Sprintf("config_opts['macros'] is a %s, want a dict", mv.Type())}
	}
	for _, it := range m.Items() {
		k, v := it[0], it[1]
		ks, isStr := k.(starlark.String)
		bad := !isStr || ks == "" || len(strings.Fields(string(ks))) != 1
		if v != starlark.None && !bool(v.Truth()) {
			bad = true
		}
		if bad {
			return &Error{File: file, Msg: fmt.Sprintf("bad macros 'config_opts['macros']['%s'] = ['%s']'", pyStr(mustConv(k)), pyStr(mustConv(v)))}
		}
		if !strings.HasPrefix(string(ks), "%") {
			_, _, _ = m.Delete(k)
			if err := m.SetKey(starlark.String("%"+string(ks)), v); err != nil {
				return &Error{File: file, Msg: err.Error(), Err: err}
			}
		}
	}
	return nil
}

func mustConv(v starlark.Value) any {
	g, err := newConverter().conv(v)
	if err != nil {
		return v.String()
	}
	if _, ok := g.(noneT); ok {
		return "None"
	}
	return g
}
