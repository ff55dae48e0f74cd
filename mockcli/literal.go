package mockcli

import (
	"fmt"
	"strings"
)

// parsePairs reads a Python literal that is a list or tuple of
// (host, chroot) string pairs, as mock's bind_mount dirs option holds:
// (("a", "/b"), ("c", "/d")) or [('a', '/b')]. Only that shape is read;
// mock evaluates it as Python.
func parsePairs(src string) ([][2]string, error) {
	p := &litParser{s: src}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.s) {
		return nil, fmt.Errorf("unexpected %q after the value", p.s[p.i:])
	}
	outer, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("not a list or tuple")
	}
	// A single pair given bare: ("a", "/b").
	if len(outer) == 2 {
		if a, ok := outer[0].(string); ok {
			if b, ok := outer[1].(string); ok {
				return [][2]string{{a, b}}, nil
			}
		}
	}
	var out [][2]string
	for _, e := range outer {
		pair, ok := e.([]any)
		if !ok || len(pair) != 2 {
			return nil, fmt.Errorf("%v is not a pair", e)
		}
		a, ok1 := pair[0].(string)
		b, ok2 := pair[1].(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%v is not a pair of strings", e)
		}
		out = append(out, [2]string{a, b})
	}
	return out, nil
}

type litParser struct {
	s string
	i int
}

func (p *litParser) space() {
	for p.i < len(p.s) && strings.IndexByte(" \t\n\r", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *litParser) value() (any, error) {
	p.space()
	if p.i >= len(p.s) {
		return nil, fmt.Errorf("unexpected end")
	}
	switch c := p.s[p.i]; c {
	case '(', '[':
		end := byte(')')
		if c == '[' {
			end = ']'
		}
		p.i++
		var items []any
		for {
			p.space()
			if p.i < len(p.s) && p.s[p.i] == end {
				p.i++
				return items, nil
			}
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			items = append(items, v)
			p.space()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
				continue
			}
			if p.i < len(p.s) && p.s[p.i] == end {
				p.i++
				return items, nil
			}
			return nil, fmt.Errorf("expected ',' or %q at offset %d", end, p.i)
		}
	case '\'', '"':
		p.i++
		var b strings.Builder
		for p.i < len(p.s) && p.s[p.i] != c {
			if p.s[p.i] == '\\' && p.i+1 < len(p.s) {
				p.i++
			}
			b.WriteByte(p.s[p.i])
			p.i++
		}
		if p.i >= len(p.s) {
			return nil, fmt.Errorf("unterminated string")
		}
		p.i++
		return b.String(), nil
	}
	return nil, fmt.Errorf("unexpected %q at offset %d", p.s[p.i], p.i)
}
