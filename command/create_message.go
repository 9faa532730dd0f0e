package command

import (
	"cmp"
	"context"
	"encoding/binary"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"messageapi"
	"messageapi/validation"
)

// MessageStore is the storage CreateMessageHandler writes to.
type MessageStore interface {
	// CreateMessage inserts m with an empty view; created is false when a
	// message with m.ID exists, which is then left unchanged.
	CreateMessage(ctx context.Context, m messageapi.Message) (created bool, err error)
	// GetMessage returns a message with its view, or a not-found error.
	GetMessage(ctx context.Context, id string) (messageapi.MessageView, error)
}

// MessageCache receives new messages so that their authors read them at
// once from the cached latest pages.
type MessageCache interface {
	AddMessage(ctx context.Context, v messageapi.MessageView) error
}

// MessageFeed announces new messages to live clients. Publish must not
// block on the network: it queues the event.
type MessageFeed interface {
	Publish(ctx context.Context, e messageapi.Event) error
}

// CreateMessage posts a message to a channel (from the path; empty is
// messageapi.DefaultChannel). ID is optional: a client that sets it can
// retry safely, because the same id with the same content is recognised.
type CreateMessage struct {
	ChannelID string `json:"-" field:"channel_id" validate:"omitempty,channel_id"`
	ID        string `json:"id" validate:"omitempty,uuidv7"`
	Text      string `json:"text" validate:"required,text"`
	UserID    string `json:"user_id" validate:"required,user_id"`
}

// validate checks every field and returns the message's id: the client's,
// parsed, or a new one.
func (c CreateMessage) validate() (uuid.UUID, error) {
	if err := validation.Check(c).Err(); err != nil {
		return uuid.UUID{}, err
	}
	if c.ID == "" {
		return uuid.Must(uuid.NewV7()), nil
	}
	return uuid.MustParse(c.ID), nil
}

// CreateMessageHandler handles CreateMessage.
type CreateMessageHandler struct {
	store MessageStore
	cache MessageCache
	feed  MessageFeed
	log   *slog.Logger
	now   func() time.Time
}

// NewCreateMessageHandler returns a CreateMessageHandler.
func NewCreateMessageHandler(store MessageStore, cache MessageCache, log *slog.Logger) *CreateMessageHandler {
	if store == nil || cache == nil || log == nil {
		panic("command: NewCreateMessageHandler needs a store, a cache and a logger")
	}
	return &CreateMessageHandler{store: store, cache: cache, log: log, now: time.Now}
}

// AnnounceTo makes h announce each new message on feed, after its commit.
func (h *CreateMessageHandler) AnnounceTo(feed MessageFeed) *CreateMessageHandler {
	h.feed = feed
	return h
}

// Handle stores the message and returns it with created == true, or, for a
// retry of a message that exists with the same content, the stored message
// with created == false. The same id with other content, or in another
// channel, is a conflict.
//
// created_at is the time inside the UUIDv7 id, so id order and created_at
// order never disagree. A client-supplied id must therefore be at most
// MaxClientIDAge older and MaxClientIDLead newer than the server clock: an
// id from the far past or future would file the message out of place in
// every page.
func (h *CreateMessageHandler) Handle(ctx context.Context, cmd CreateMessage) (messageapi.MessageView, bool, error) {
	id, err := cmd.validate()
	if err != nil {
		return messageapi.MessageView{}, false, err
	}
	m := messageapi.Message{
		ID:        id.String(),
		ChannelID: cmp.Or(cmd.ChannelID, messageapi.DefaultChannel),
		Text:      cmd.Text,
		UserID:    cmd.UserID,
		CreatedAt: messageapi.NewTime(idTime(id)),
	}
	if cmd.ID != "" {
		if age := h.now().Sub(m.CreatedAt.Time); age > messageapi.MaxClientIDAge || -age > messageapi.MaxClientIDLead {
			// A retry of an old message is still fine; a new one is not.
			return h.existing(ctx, m, messageapi.InvalidFields(map[string]string{"id": messageapi.ClientIDRule}))
		}
	}
	created, err := h.store.CreateMessage(ctx, m)
	if err != nil {
		return messageapi.MessageView{}, false, err
	}
	if !created {
		return h.existing(ctx, m, nil)
	}
	v := messageapi.NewMessageView(m)
	h.writeThrough(ctx, v)
	return v, true, nil
}

// writeThrough puts a committed message into the cached pages and
// announces it. It runs even when the client has gone, since other
// readers need it, and a failure does not fail the write: PostgreSQL has
// the message, the cache drops an index that may lack it (see
// pagecache.Cache.AddMessage), and live clients see the message when they
// next read.
func (h *CreateMessageHandler) writeThrough(ctx context.Context, v messageapi.MessageView) {
	ctx = context.WithoutCancel(ctx)
	if err := h.cache.AddMessage(ctx, v); err != nil {
		h.log.DebugContext(ctx, "cache write-through failed", "message_id", v.ID, "err", err)
	}
	announce(ctx, h.feed, h.log, messageapi.NewMessageEvent(v))
}

// announce queues e on feed, when there is one. A failure is logged: live
// clients see the message when they next read.
func announce(ctx context.Context, feed MessageFeed, log *slog.Logger, e messageapi.Event) {
	if feed == nil {
		return
	}
	if err := feed.Publish(ctx, e); err != nil {
		log.DebugContext(ctx, "live feed publish failed", "message_id", e.MessageID, "err", err)
	}
}

// existing resolves a create whose id is taken or unusable: the stored
// message when it has the same content, a conflict when it has other
// content, and ifMissing when there is none.
func (h *CreateMessageHandler) existing(ctx context.Context, m messageapi.Message, ifMissing error) (messageapi.MessageView, bool, error) {
	v, err := h.store.GetMessage(ctx, m.ID)
	switch {
	case messageapi.ErrorCode(err) == messageapi.ENOTFOUND && ifMissing != nil:
		return messageapi.MessageView{}, false, ifMissing
	case err != nil:
		return messageapi.MessageView{}, false, err
	case v.Text != m.Text || v.UserID != m.UserID || v.ChannelID != m.ChannelID:
		return messageapi.MessageView{}, false, messageapi.Errorf(messageapi.ECONFLICT,
			"a different message with id %s exists", m.ID)
	}
	// The first attempt may have committed without its write-through (a
	// crash or a lost reply in between): write the stored view through now.
	// The cache keeps the newer of two versions, so this is always safe.
	h.writeThrough(ctx, v)
	return v, false, nil
}

// idTime returns the millisecond timestamp inside a UUIDv7.
func idTime(id uuid.UUID) time.Time {
	var b [8]byte
	copy(b[2:], id[:6])
	return time.UnixMilli(int64(binary.BigEndian.Uint64(b[:])))
}
