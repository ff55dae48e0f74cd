package crashpoint

// Env is the variable naming the point(s) to crash at (comma-separated)
// in a binary built with the crashpoints tag.
const Env = "THINROOT_CRASHPOINT"

// Tag is the build tag that compiles crash points in.
const Tag = "crashpoints"
