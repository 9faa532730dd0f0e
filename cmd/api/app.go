package main

import (
	"cmp"
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"messageapi/cmd/internal/daemon"
	"messageapi/command"
	"messageapi/httpapi"
	"messageapi/postgres"
	"messageapi/query"
	"messageapi/redis"
	"messageapi/redis/feed"
	"messageapi/redis/pagecache"
	"messageapi/redis/stream"
	"messageapi/sse"
)

// app is the API's use cases wired on its dependencies, with the
// background work they need.
type app struct {
	server    *httpapi.Server
	hub       *sse.Hub
	cache     *pagecache.Cache
	near      *pagecache.NearCache // nil when off
	publisher *stream.Publisher
	feed      *feed.Feed
	writes    *postgres.GroupCommitStore
	own       *pagecache.OwnReactions // nil when off
}

// background is the app's background work, in the order it depends on
// itself (see daemon.RunComponents): every component the use cases need
// to run, so that no program or test can leave one out.
func (a *app) background(grace time.Duration) []daemon.Component {
	// The publishers drain their queues together, within one grace.
	drains := []func(context.Context, time.Duration){a.publisher.Run, a.feed.Run}
	if a.own != nil {
		drains = append(drains, a.own.Run)
	}
	cs := []daemon.Component{
		daemon.Background("reaction writes", a.writes.Run),
		daemon.Background("publishers", func(ctx context.Context) {
			var wg sync.WaitGroup
			for _, run := range drains {
				wg.Go(func() { run(ctx, grace) })
			}
			wg.Wait()
		}),
		daemon.Background("page cache", a.cache.Run),
	}
	if a.near != nil {
		cs = append(cs, daemon.Background("near cache", a.near.Run))
	}
	return append(cs, daemon.Background("live events", a.hub.Run))
}

// pages is the latest pages as the use cases read and refresh them.
type pages interface {
	query.PageCache
	command.MessageCache
	command.ChangedMessageCache
}

// newApp wires the use cases: the commands on the write pool db, the
// queries on the read pool readDB.
func newApp(cfg config, db, readDB *postgres.DB, rc *redis.Client, log *slog.Logger, reg prometheus.Registerer) (*app, error) {
	messages, readMessages := postgres.NewMessageStore(db), postgres.NewMessageStore(readDB)
	// Reaction writes share transactions (group commit); reads take the
	// read pool.
	reactions := postgres.NewGroupCommitStore(db, postgres.GroupCommitConfig{MaxBatch: cfg.writeBatch, Committers: cfg.writeCommitters},
		postgres.NewGroupCommitMetrics(reg), log)
	readReactions := postgres.NewReactionStore(readDB)
	a := &app{
		cache: pagecache.New(rc, pagecache.Config{Pages: cfg.cachePages, ChannelPages: cfg.cacheChannelPages,
			Bytes: cfg.cacheBytes, Channels: cfg.cacheChannels, TTL: cfg.CacheTTL}),
		publisher: stream.NewPublisher(stream.New(rc, stream.Config{MaxLen: int64(cfg.streamMaxLen), Partitions: cfg.Partitions}), redis.QueueConfig{}),
		feed:      feed.New(rc, feed.Config{MaxLen: int64(cfg.FeedMaxLen)}),
		writes:    reactions,
	}
	pages, ownReader := a.nearCaches(cfg, readReactions)
	addReaction := command.NewAddReactionHandler(reactions, a.publisher, log, command.AddReactionConfig{MaxTypes: cmp.Or(cfg.maxReactionTypes, -1)})
	removeReaction := command.NewRemoveReactionHandler(reactions, a.publisher, log)
	changeMessage := command.NewChangeMessageHandler(messages, pages, log).AnnounceTo(a.feed)
	if a.own != nil {
		addReaction.ForgetIn(a.own)
		removeReaction.ForgetIn(a.own)
		changeMessage.ForgetIn(a.own)
	}
	hubCfg := cfg.sse
	hubCfg.WriteTimeout = cfg.requestTimeout
	a.hub = sse.NewHub(a.feed, log, reg, hubCfg)
	var err error
	a.server, err = httpapi.New(httpapi.UseCases{
		CreateMessage:  command.NewCreateMessageHandler(messages, pages, log).AnnounceTo(a.feed),
		ChangeMessage:  changeMessage,
		AddReaction:    addReaction,
		RemoveReaction: removeReaction,
		ListMessages:   query.NewListMessagesHandler(readMessages, ownReader, pages, query.ListMessagesConfig{HeavyReads: cfg.heavyReads}),
		GetMessage:     query.NewGetMessageHandler(readMessages, ownReader),
		ListReactions:  query.NewListReactionsHandler(readReactions),
		Events:         a.hub,
	})
	return a, err
}

// nearCaches puts the process's near cache in front of the page cache, and
// beside it the copies of the messages read most that answer readers' own
// reactions, when they are on. It returns what the use cases read pages
// and own reactions from.
func (a *app) nearCaches(cfg config, reactions *postgres.ReactionStore) (pages, query.OwnReactionReader) {
	if cfg.nearCacheMaxAge <= 0 {
		return a.cache, reactions
	}
	a.near = pagecache.NewNearCache(a.cache, pagecache.NearCacheConfig{MaxAge: cfg.nearCacheMaxAge, Bytes: cfg.nearCacheBytes})
	if cfg.ownReactions <= 0 {
		return a.near, reactions
	}
	a.own = pagecache.NewOwnReactions(a.near, reactions, pagecache.OwnReactionsConfig{MaxReactions: cfg.ownReactions})
	return a.near, a.own
}
