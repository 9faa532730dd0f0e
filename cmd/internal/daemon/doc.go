// Package daemon holds the process plumbing that cmd/api and cmd/worker
// share: settings from flags with environment fallbacks, the JSON logger,
// the admin server (health, readiness, metrics, pprof), serving with a
// graceful shutdown, and retrying start-up work while a dependency is down.
package daemon
