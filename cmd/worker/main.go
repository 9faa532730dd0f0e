// Command worker runs the projection: it consumes reaction changes from
// the Redis stream through a consumer group and folds them into the
// message_views read model and the cached pages.
//
// Usage:
//
//	worker [flags]               run the projection
//	worker healthcheck [flags]   exit 0 when the admin /readyz of a running worker answers 200
//
// Run worker -h for the flags; each has an environment-variable fallback.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		stop()
		os.Exit(1)
	}
}
