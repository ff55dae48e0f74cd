package lock_test

import (
	"os"
	"testing"

	"github.com/thinroot/thinroot/internal/testguard"
)

func TestMain(m *testing.M) { os.Exit(testguard.Main(m)) }
