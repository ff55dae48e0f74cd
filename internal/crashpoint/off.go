//go:build !crashpoints

package crashpoint

// Enabled tells whether this binary has crash points: without the
// crashpoints build tag it has none.
const Enabled = false

// Hit does nothing: this binary was built without crash points.
func Hit(string) {}
