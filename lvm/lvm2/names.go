package lvm2

import (
	"fmt"
	"strings"

	"github.com/thinroot/thinroot/lvm/backend"
)

// validateVG applies LVM's rules for a volume group name.
func validateVG(vg string) error {
	if vg == "" {
		return fmt.Errorf("lvm2: no volume group given: %w", backend.ErrInvalidName)
	}
	if err := checkLVMChars(vg); err != nil {
		return fmt.Errorf("volume group name %q: %v: %w", vg, err, backend.ErrInvalidName)
	}
	return nil
}

// validateLV applies LVM's character rules to an LV name before it goes on
// a command line, so that a bad name is refused as a name (not as some
// lvm2 failure) and can never be read as an option. The Manager checks
// mock's finer rules; mock.ValidatePool holds the reserved names.
func validateLV(name string) error {
	if err := checkLVMChars(name); err != nil {
		return fmt.Errorf("volume name %q: %v: %w", name, err, backend.ErrInvalidName)
	}
	if len(name) > 127 {
		return fmt.Errorf("volume name %q: longer than 127 bytes: %w", name, backend.ErrInvalidName)
	}
	return nil
}

func checkLVMChars(s string) error {
	if s == "" {
		return fmt.Errorf("empty")
	}
	if s == "." || s == ".." {
		return fmt.Errorf("reserved")
	}
	if s[0] == '-' {
		return fmt.Errorf("starts with '-'")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '+' || c == '_' || c == '.' || c == '-':
		default:
			return fmt.Errorf("character %q at byte %d is not allowed", c, i)
		}
	}
	return nil
}

// ValidateTag applies LVM's rules for a tag: at most 1024 bytes of
// [A-Za-z0-9_+.-/=!:&#], not starting with '-'.
func ValidateTag(tag string) error {
	bad := func(why string) error {
		return fmt.Errorf("lvm tag %q: %s: %w", tag, why, backend.ErrInvalidName)
	}
	if tag == "" {
		return bad("empty")
	}
	if len(tag) > 1024 {
		return bad("longer than 1024 bytes")
	}
	if tag[0] == '-' {
		return bad("starts with '-'")
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_+.-/=!:&#", c) >= 0 {
			continue
		}
		return bad(fmt.Sprintf("character %q at byte %d is not allowed", c, i))
	}
	return nil
}
