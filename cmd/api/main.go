// Command api serves the message API over HTTP: it validates requests,
// writes them to PostgreSQL, appends reaction changes to the Redis stream
// and serves reads from the projection.
//
// Usage:
//
//	api [flags]               serve the API (migrating the schema first)
//	api migrate [flags]       migrate the schema and exit
//	api healthcheck [flags]   exit 0 when the admin /readyz of a running API answers 200
//
// Run api -h for the flags; each has an environment-variable fallback.
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
		fmt.Fprintln(os.Stderr, "api:", err)
		stop()
		os.Exit(1)
	}
}
