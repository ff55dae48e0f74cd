package faults_test

import (
	"testing"

	"github.com/thinroot/thinroot/faults"
)

// TestCrashMatrix kills every multi-step operation at every named point
// on the file backend (see faults.RunCrashMatrix).
func TestCrashMatrix(t *testing.T) { faults.RunCrashMatrix(t, hostEnv) }
