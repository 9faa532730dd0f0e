//go:build !linux

package e2e_test

import "os/exec"

// dieWithTest does nothing where the parent's death cannot signal the
// child; the tests' cleanups still stop it.
func dieWithTest(*exec.Cmd) {}
