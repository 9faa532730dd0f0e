// Command worker runs the projection: it consumes reaction changes from
// the Redis stream through a consumer group and folds them into the
// message_views read model and the cached pages.
//
// Usage:
//
//	worker [flags]               run the projection
//	worker reconcile [flags]     check every view against its reactions and repair drift
//	worker healthcheck [flags]   exit 0 when the admin /healthz of a running worker answers 200 (liveness)
//
// Run worker -h for the flags; each has an environment-variable fallback.
package main

import "messageapi/cmd/internal/daemon"

func main() { daemon.Main("worker", run) }
