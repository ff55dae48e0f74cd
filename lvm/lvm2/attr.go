package lvm2

// Attr is lv_attr, ten characters, each a flag (lvs(8), "lv_attr bits").
type Attr string

func (a Attr) at(i int) byte {
	if i < len(a) {
		return a[i]
	}
	return '-'
}

// Type is bit 1: 't' thin pool, 'V' thin volume, 'T' pool data, 'e' pool
// metadata or spare, '-' a plain linear volume, ...
func (a Attr) Type() byte { return a.at(0) }

// State is bit 5: 'a' active, '-' inactive, 's' suspended, ...
func (a Attr) State() byte { return a.at(4) }

// Open is bit 6: 'o' when the device is open (mounted, for one).
func (a Attr) Open() bool { return a.at(5) == 'o' }

// Health is bit 9.
func (a Attr) Health() byte { return a.at(8) }

// SkipActivation is bit 10: 'k' when the volume is skipped by normal
// activation (thin snapshots, by default).
func (a Attr) SkipActivation() bool { return a.at(9) == 'k' }

// IsThinPool and IsThinVolume read the volume type.
func (a Attr) IsThinPool() bool   { return a.Type() == 't' }
func (a Attr) IsThinVolume() bool { return a.Type() == 'V' }

// Health reasons, as the Manager shows them in stats.
const (
	HealthFailed       = "failed"
	HealthOutOfData    = "out of data space"
	HealthMetadataRO   = "metadata read-only"
	HealthPartial      = "partial: a physical volume is missing"
	HealthUnknown      = "unknown"
	HealthCheckNeeded  = "thin pool check needed"
	HealthSuspended    = "suspended"
	HealthMissingTable = "device present without table"
)

// PoolHealth decodes a thin pool's lv_attr into a short reason, "" when
// nothing is wrong. Bit 9 is the thin pool's own health ('F' failed, 'D'
// out of data space, 'M' metadata read-only); bit 5 also tells a pool that
// needs a check or is stuck.
func (a Attr) PoolHealth() string {
	switch a.Health() {
	case 'F':
		return HealthFailed
	case 'D':
		return HealthOutOfData
	case 'M':
		return HealthMetadataRO
	case 'p':
		return HealthPartial
	case 'X':
		return HealthUnknown
	}
	switch a.State() {
	case 'c', 'C':
		return HealthCheckNeeded
	case 's':
		return HealthSuspended
	case 'd':
		return HealthMissingTable
	}
	return ""
}
