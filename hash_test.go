package messageapi_test

import (
	"testing"

	"messageapi"
)

// TestHash32IsFNV1a pins the hash: processes of different builds must put
// a message in the same partition.
func TestHash32IsFNV1a(t *testing.T) {
	for s, want := range map[string]uint32{"": 0x811c9dc5, "a": 0xe40c292c, "foobar": 0xbf9cf968} {
		if got := messageapi.Hash32(s); got != want {
			t.Errorf("Hash32(%q) = %#x, want %#x", s, got, want)
		}
	}
}
