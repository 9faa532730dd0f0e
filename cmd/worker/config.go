package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"messageapi/cmd/internal/daemon"
	"messageapi/projection"
)

const usage = `Usage: worker [subcommand] [flags]

Subcommands:
  (none)        run the projection: consume the reaction stream and fold it into the read model
  reconcile     check every view against its reactions, rebuild those that differ, print a JSON report
  healthcheck   exit 0 when the admin /healthz of a running worker answers 200 (liveness, for container health checks)`

// config is the worker's configuration. Each field is a flag with an
// environment-variable fallback; flags win.
type config struct {
	daemon.Common
	projection    projection.Config
	leases        bool
	reconcileSize int
}

// defaultConsumer names this process in the consumer group. It is stable
// across restarts of one container (same host name, pid 1), so a restarted
// worker finishes its own pending entries at once instead of waiting for a
// claim.
func defaultConsumer() string {
	host, err := os.Hostname()
	if err != nil {
		host = "worker"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// parseConfig reads the subcommand ("run" when absent), the flags and the
// environment. Its error is one line that names the bad setting.
func parseConfig(args []string, getenv func(string) string, output io.Writer) (config, string, error) {
	sub := "run"
	if len(args) > 0 && (args[0] == "healthcheck" || args[0] == "reconcile") {
		sub, args = args[0], args[1:]
	}
	var c config
	var maxDeliveries int
	f := daemon.NewFlags("worker", usage, getenv, output)
	defineFlags(f, &c, &maxDeliveries)
	if err := f.Parse(args); err != nil {
		return config{}, "", err
	}
	p := &c.projection
	p.MaxDeliveries = int64(maxDeliveries)
	c.SessionName = "messageapi-worker:" + p.Consumer
	return c, sub, c.validate()
}

// defineFlags defines the worker's flags on f, into c and maxDeliveries.
func defineFlags(f *daemon.Flags, c *config, maxDeliveries *int) {
	c.projection = projection.DefaultConfig()
	daemon.DefineCommon(f, &c.Common, daemon.Common{
		AdminAddr: "localhost:6061", DBMaxConns: 4, DBTimeout: 10 * time.Second, RedisTimeout: time.Second,
		// A fold is a few statements in quick succession: an idle second in
		// one means its worker is frozen or cut off, and its locks go.
		DBLockTimeout: 2 * time.Second, DBIdleTx: time.Second,
	})
	d, p := projection.DefaultConfig(), &c.projection
	f.String(&p.Group, "group", d.Group, "consumer group of the reaction stream", "GROUP", "STREAM_GROUP")
	f.String(&p.Consumer, "consumer", defaultConsumer(), "this worker's name in the consumer group; unique per running worker", "CONSUMER", "STREAM_CONSUMER")
	f.ShowDefault("consumer", "host name and pid")
	f.Int(&p.BatchSize, "batch-size", d.BatchSize, "stream entries per read, and so per fold transaction", "BATCH_SIZE")
	f.Duration(&p.Block, "block", d.Block, "how long a stream read waits for new entries", "BLOCK", "STREAM_BLOCK")
	f.Duration(&p.ClaimInterval, "claim-interval", d.ClaimInterval, "how often to claim entries other consumers left pending", "CLAIM_INTERVAL")
	f.Duration(&p.ClaimMinIdle, "claim-min-idle", d.ClaimMinIdle, "how long an entry must be pending before another worker claims it", "CLAIM_MIN_IDLE")
	f.Duration(&p.FoldTimeout, "fold-timeout", d.FoldTimeout, "how long one batch's fold may take with its retries before it is left pending; below -claim-min-idle", "FOLD_TIMEOUT")
	f.Int(maxDeliveries, "max-deliveries", int(d.MaxDeliveries), "deliveries after which an entry goes to the dead-letter stream (its change is still swept)", "MAX_DELIVERIES")
	f.Duration(&p.SweepInterval, "sweep-interval", d.SweepInterval, "how often to look for changes the stream did not deliver", "SWEEP_INTERVAL")
	f.Duration(&p.SweepMinAge, "sweep-min-age", d.SweepMinAge, "how old an unprojected change must be before the sweeper folds it", "SWEEP_MIN_AGE")
	f.Bool(&c.leases, "partition-leases", false, "give each stream partition one worker at a time, so a hot message is folded by one worker (set -stream-partitions to at least the number of workers, or some stand by)", "PARTITION_LEASES")
	f.Duration(&p.LeaseTTL, "lease-ttl", d.LeaseTTL, "with -partition-leases: how soon the partitions of a worker that died or froze go to its peers", "LEASE_TTL")
	f.Int(&c.reconcileSize, "reconcile-page", 500, "messages per page of the reconcile subcommand", "RECONCILE_PAGE")
}

// flagOf names the flag of each projection setting that Validate checks.
var flagOf = map[string]string{
	"Consumer": "consumer", "BatchSize": "batch-size", "Block": "block",
	"ClaimMinIdle": "claim-min-idle", "FoldTimeout": "fold-timeout",
}

func (c *config) validate() error {
	p := c.projection
	err := daemon.FirstError(
		c.Common.Validate(),
		daemon.Require(p.Group != "", "group", "must not be empty"),
		daemon.Require(p.BatchSize >= 1, "batch-size", "must be at least 1"),
		daemon.Require(p.Block >= 10*time.Millisecond, "block", "must be at least 10ms"),
		daemon.Require(p.ClaimInterval > 0, "claim-interval", "must be positive"),
		daemon.Require(p.FoldTimeout > 0, "fold-timeout", "must be positive"),
		daemon.Require(p.MaxDeliveries >= 1, "max-deliveries", "must be at least 1"),
		daemon.Require(p.SweepInterval > 0, "sweep-interval", "must be positive"),
		daemon.Require(p.SweepMinAge >= 0, "sweep-min-age", "must not be negative"),
		daemon.Require(p.LeaseTTL >= 300*time.Millisecond, "lease-ttl", "must be at least 300ms"),
		daemon.Require(c.reconcileSize >= 1 && c.reconcileSize <= 10_000, "reconcile-page", "must be from 1 to 10000"),
	)
	if err != nil {
		return err
	}
	var cerr *projection.ConfigError
	if err := p.Validate(); errors.As(err, &cerr) {
		if cerr.Other != "" {
			return daemon.Require(false, flagOf[cerr.Setting], "%s -%s", cerr.Rule, flagOf[cerr.Other])
		}
		return daemon.Require(false, flagOf[cerr.Setting], "%s", cerr.Rule)
	} else if err != nil {
		return err
	}
	return nil
}
