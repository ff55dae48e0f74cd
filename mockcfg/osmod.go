package mockcfg

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// osModule is the part of Python's os module that configs use: mock runs
// config files in a namespace where os is imported, and user configs call
// os.path.join, os.path.expanduser, os.getenv and the like.
var osModule = func() *starlarkstruct.Module {
	str1 := func(name string, fn func(string) starlark.Value) *starlark.Builtin {
		return starlark.NewBuiltin(name, func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var p string
			if err := starlark.UnpackPositionalArgs(b.Name(), args, kw, 1, &p); err != nil {
				return nil, err
			}
			return fn(p), nil
		})
	}
	exists := func(check func(os.FileInfo) bool) func(string) starlark.Value {
		return func(p string) starlark.Value {
			st, err := os.Stat(p)
			return starlark.Bool(err == nil && check(st))
		}
	}
	env := starlark.NewDict(len(os.Environ()))
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		_ = env.SetKey(starlark.String(k), starlark.String(v))
	}
	env.Freeze()
	path := &starlarkstruct.Module{Name: "os.path", Members: starlark.StringDict{
		"join": starlark.NewBuiltin("join", func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			out := ""
			for _, a := range args {
				s, ok := a.(starlark.String)
				if !ok {
					return nil, fmt.Errorf("join: got %s, want str", a.Type())
				}
				out = pyJoin(out, string(s))
			}
			return starlark.String(out), nil
		}),
		"exists":   str1("exists", exists(func(os.FileInfo) bool { return true })),
		"isdir":    str1("isdir", exists(os.FileInfo.IsDir)),
		"isfile":   str1("isfile", exists(func(st os.FileInfo) bool { return st.Mode().IsRegular() })),
		"isabs":    str1("isabs", func(p string) starlark.Value { return starlark.Bool(strings.HasPrefix(p, "/")) }),
		"basename": str1("basename", func(p string) starlark.Value { return starlark.String(p[strings.LastIndexByte(p, '/')+1:]) }),
		"dirname": str1("dirname", func(p string) starlark.Value {
			d := p[:strings.LastIndexByte(p, '/')+1]
			if t := strings.TrimRight(d, "/"); t != "" {
				d = t
			}
			return starlark.String(d)
		}),
		"abspath": str1("abspath", func(p string) starlark.Value { a, _ := filepath.Abs(p); return starlark.String(a) }),
		"realpath": str1("realpath", func(p string) starlark.Value {
			a, _ := filepath.Abs(p)
			if r, err := filepath.EvalSymlinks(a); err == nil {
				a = r
			}
			return starlark.String(a)
		}),
		"expanduser": str1("expanduser", func(p string) starlark.Value {
			if p == "~" || strings.HasPrefix(p, "~/") {
				if h, err := os.UserHomeDir(); err == nil {
					return starlark.String(h + p[1:])
				}
			}
			return starlark.String(p)
		}),
		"splitext": str1("splitext", func(p string) starlark.Value {
			base := p[strings.LastIndexByte(p, '/')+1:]
			dot := strings.LastIndexByte(base, '.')
			if dot <= 0 || strings.Trim(base[:dot], ".") == "" {
				return starlark.Tuple{starlark.String(p), starlark.String("")}
			}
			cut := len(p) - len(base) + dot
			return starlark.Tuple{starlark.String(p[:cut]), starlark.String(p[cut:])}
		}),
	}}
	return &starlarkstruct.Module{Name: "os", Members: starlark.StringDict{
		"path":    path,
		"environ": env,
		"sep":     starlark.String("/"),
		"devnull": starlark.String(os.DevNull),
		"getenv": starlark.NewBuiltin("getenv", func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			var k string
			var dflt starlark.Value = starlark.None
			if err := starlark.UnpackPositionalArgs(b.Name(), args, kw, 1, &k, &dflt); err != nil {
				return nil, err
			}
			if v, ok := os.LookupEnv(k); ok {
				return starlark.String(v), nil
			}
			return dflt, nil
		}),
		"getuid": starlark.NewBuiltin("getuid", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			return starlark.MakeInt(hostUID()), nil
		}),
		"getgid": starlark.NewBuiltin("getgid", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			return starlark.MakeInt(os.Getgid()), nil
		}),
		"getcwd": starlark.NewBuiltin("getcwd", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			wd, err := os.Getwd()
			return starlark.String(wd), err
		}),
	}}
}()
