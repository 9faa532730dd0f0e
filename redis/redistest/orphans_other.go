//go:build !linux

package redistest

import "os/exec"

// dieWithTest does nothing where the parent's death cannot signal the
// child; the tests' cleanups still stop it.
func dieWithTest(*exec.Cmd) {}
