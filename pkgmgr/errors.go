package pkgmgr

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Error is a failed package-manager run.
type Error struct {
	Kind   string // dnf4, dnf5, yum
	Op     string // the sub-command: install, builddep, remove, ...
	Status int    // its exit status
	// Missing are the packages, groups or requirements that no enabled
	// repository provides ("@group" for a group).
	Missing []string
	// Repo is the repository whose metadata could not be loaded.
	Repo string
	// Problems are the dependency solver's explanations.
	Problems []string
	// Detail is the package manager's own last error line.
	Detail string
}

func (e *Error) Error() string {
	head := fmt.Sprintf("%s %s failed (exit status %d)", e.Kind, e.Op, e.Status)
	switch {
	case e.Repo != "":
		msg := head + ": repository " + e.Repo + " could not be loaded"
		if e.Detail != "" {
			msg += ": " + e.Detail
		}
		return msg
	case len(e.Missing) > 0 && e.Op == "builddep":
		return head + ": BuildRequires not met, no package provides: " + strings.Join(e.Missing, ", ")
	case len(e.Missing) > 0:
		return head + ": no package provides: " + strings.Join(e.Missing, ", ")
	case len(e.Problems) > 0:
		return head + ": " + strings.Join(e.Problems, "; ")
	case e.Detail != "":
		return head + ": " + e.Detail
	}
	return head
}

// ExitCode is mock's exit status for the failure: 30.
func (e *Error) ExitCode() int { return ExitCode }

var (
	// dnf4 and dnf5: install of a name no repository has.
	reNoMatch = regexp.MustCompile(`(?m)^No match for argument: (.+?)\s*$`)
	// dnf4's builddep: a BuildRequires nothing provides.
	reNoMatching = regexp.MustCompile(`(?m)^No matching package to install: '(.+)'\s*$`)
	// dnf4: a group that does not exist.
	reNoGroup = regexp.MustCompile(`(?m)^Module or Group '(.+)' is not available\.\s*$`)
	// dnf5: a group or a builddep requirement.
	reNoGroup5 = regexp.MustCompile(`(?m)^No match for group package: (.+?)\s*$|^No group found: (.+?)\s*$`)
	// yum.
	reYumNo = regexp.MustCompile(`(?m)^No package (.+) available\.\s*$`)
	// Depsolver explanations, dnf4 and dnf5 alike.
	reProblem     = regexp.MustCompile(`(?m)^\s*- (.+)$`)
	reNothingProv = regexp.MustCompile(`nothing provides (.+?) needed by `)
	// Repository metadata that could not be loaded.
	reRepo = []*regexp.Regexp{
		regexp.MustCompile(`Failed to download metadata for repo '([^']+)'`),
		regexp.MustCompile(`Errors during downloading metadata for repository '([^']+)'`),
		regexp.MustCompile(`Cannot find a valid baseurl for repo: (\S+)`),
		regexp.MustCompile(`Failed to download metadata \(.*\) for repository "([^"]+)"`),
		regexp.MustCompile(`for repository "([^"]+)"`),
	}
	reErrorLine = regexp.MustCompile(`(?m)^Error: ?(.*)$`)
)

// ParseFailure reads a failed run's output (dnf4, dnf5 or yum, in the C
// locale) into an *Error.
func ParseFailure(kind, op string, status int, output string) *Error {
	e := &Error{Kind: kind, Op: op, Status: status}
	add := func(name string) {
		name = strings.TrimSpace(name)
		if name != "" && !contains(e.Missing, name) {
			e.Missing = append(e.Missing, name)
		}
	}
	for _, m := range reNoMatch.FindAllStringSubmatch(output, -1) {
		add(m[1])
	}
	for _, m := range reNoMatching.FindAllStringSubmatch(output, -1) {
		add(m[1])
	}
	for _, m := range reNoGroup.FindAllStringSubmatch(output, -1) {
		add("@" + m[1])
	}
	for _, m := range reNoGroup5.FindAllStringSubmatch(output, -1) {
		if m[1] != "" {
			add(m[1])
		} else {
			add("@" + m[2])
		}
	}
	for _, m := range reYumNo.FindAllStringSubmatch(output, -1) {
		add(m[1])
	}
	if i := strings.Index(output, "Problem"); i >= 0 {
		for _, m := range reProblem.FindAllStringSubmatch(output[i:], -1) {
			p := strings.TrimSpace(m[1])
			if !contains(e.Problems, p) {
				e.Problems = append(e.Problems, p)
			}
			if n := reNothingProv.FindStringSubmatch(p); n != nil {
				add(n[1])
			}
		}
	}
	for _, re := range reRepo {
		if m := re.FindStringSubmatch(output); m != nil {
			e.Repo = m[1]
			break
		}
	}
	if ms := reErrorLine.FindAllStringSubmatch(output, -1); len(ms) > 0 {
		for i := len(ms) - 1; i >= 0; i-- {
			if d := strings.TrimSpace(ms[i][1]); d != "" {
				e.Detail = d
				break
			}
		}
	}
	sort.Strings(e.Missing)
	return e
}
