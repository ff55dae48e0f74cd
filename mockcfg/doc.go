// Package mockcfg reads mock's config files (/etc/mock/*.cfg, the user's
// ~/.config/mock) and gives the values mock itself computes from them.
//
// mock runs a config file as Python after replacing each include('FILE')
// line with FILE's text, then renders every string value with Jinja2 once
// all files are read. This package does the same with a real interpreter
// and a real template engine:
//
//   - include() lines are expanded as mock does it (textually, paths
//     relative to the config dir, each file once per top-level file, the
//     included text passed through re.sub's replacement-template escapes),
//     keeping the origin of every line so that errors name the original
//     file and line;
//   - the text runs on go.starlark.net with top-level if/for/while, sets,
//     recursion and global reassignment allowed, config_opts (a dict that
//     resolves mock's key aliases), include and a small os module in scope;
//     the Python forms Starlark rejects are rewritten at the token level
//     first (see pysrc.go: adjacent string literals, unknown backslash
//     escapes, the u and f string prefixes, is / is not, del d[k], tabs in
//     indentation, import os);
//   - files are read in mock's order: built-in defaults (mock's, with its
//     aliases), site-defaults.cfg and chroot-aliases.cfg of the config dir,
//     the named config (~/.config/mock/NAME.cfg before CONFIGDIR/NAME.cfg; a
//     name ending in .cfg is a path), ~/.mock/user.cfg, ~/.config/mock.cfg;
//   - values are rendered with gonja (Jinja2 for Go) the way mock's
//     TemplatedDictionary does: the raw top-level dict as context, until
//     the text is stable (at most jinja_max_recursion = 5 renders),
//     undefined names empty, lists and dicts rendered in place, tuples
//     left alone, None printed and compared as Jinja2 does.
//
// Known differences from mock, all outside what shipped configs use:
//
//   - Starlark is not Python: no classes, try/except, with, import (other
//     than os), the ** operator, chained comparisons, generators,
//     string iteration, or the rest of Python's standard library. Such a
//     config fails to load with an error naming its file and line.
//   - mock runs a file with separate globals and locals, so a function
//     defined in a config cannot see top-level names (not even itself);
//     Starlark functions can, so a few configs that fail in mock load here.
//   - Template engine: an attribute of an undefined name renders empty
//     (Jinja2 raises), dicts print with sorted keys, and gonja's filters and
//     str methods are close to but not exactly Jinja2's and Python's.
//   - Host-dependent defaults (chrootuid, chrootgid, host_arch, the
//     %_buildhost macro, mock_run_uuid) are taken from this host as mock
//     takes them; installation-dependent ones (plugin_dir, plugins found in
//     it) are left out, and version is MockVersion.
//   - Nothing of mock's command-line step is applied except what it derives
//     without options: rpmbuild_arch and repo_arch from target_arch.
package mockcfg
