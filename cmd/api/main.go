// Command api serves the message API over HTTP: it validates requests,
// writes them to PostgreSQL, appends reaction changes to the Redis stream
// and serves reads from the projection.
//
// Usage:
//
//	api [flags]               serve the API (migrating the schema first)
//	api migrate [flags]       migrate the schema and exit
//	api healthcheck [flags]   exit 0 when the admin /healthz of a running API answers 200 (liveness)
//	api token -sub alice [-role server] [-ttl 1h]
//	                          print a development token signed with the -auth-secret
//
// Run api -h for the flags; each has an environment-variable fallback.
package main

import "messageapi/cmd/internal/daemon"

func main() { daemon.Main("api", run) }
