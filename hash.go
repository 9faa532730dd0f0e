package messageapi

import "hash/fnv"

// Hash32 is the one hash the programs spread work by: FNV-1a of s. A
// message's partition of the reaction stream is Hash32(id) mod the
// partitions, so every process must agree on it.
func Hash32(s string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return h.Sum32()
}
