package command

import (
	"context"
	"log/slog"
	"time"

	"messageapi"
	"messageapi/validation"
)

// MessageChanger is the storage the edit and the delete write to; see
// postgres.MessageStore.
type MessageChanger interface {
	// EditMessage sets the text and returns the message's new view.
	EditMessage(ctx context.Context, c messageapi.MessageChange) (messageapi.MessageView, error)
	// DeleteMessage makes the message a tombstone and returns it.
	DeleteMessage(ctx context.Context, c messageapi.MessageChange) (messageapi.MessageView, error)
}

// ChangedMessageCache receives the views of changed messages, so that no
// cached page shows a message as it was before: the writing process's
// pages at once, the others' within the cache's staleness bound.
type ChangedMessageCache interface {
	UpdateMessage(ctx context.Context, v messageapi.MessageView) error
}

// DeletedMessageForgetter forgets what readers' own reactions it holds on
// a deleted message.
type DeletedMessageForgetter interface {
	ForgetMessage(ctx context.Context, messageID string)
}

// EditMessage sets the text of a message. UserID must be its author,
// unless AnyAuthor is set (a server's token, which the transport knows).
type EditMessage struct {
	ID        string `json:"-" field:"id" validate:"uuid"` // from the path
	Text      string `json:"text" validate:"required,text"`
	UserID    string `json:"user_id" validate:"required,user_id"`
	AnyAuthor bool   `json:"-"`
}

// DeleteMessage deletes a message, leaving a tombstone in its place.
type DeleteMessage struct {
	ID        string `field:"id" validate:"uuid"`
	UserID    string `field:"user_id" validate:"required,user_id"`
	AnyAuthor bool   `json:"-"`
}

// ChangeMessageHandler handles EditMessage and DeleteMessage.
type ChangeMessageHandler struct {
	store MessageChanger
	cache ChangedMessageCache
	feed  MessageFeed
	own   DeletedMessageForgetter
	log   *slog.Logger
	now   func() time.Time
}

// NewChangeMessageHandler returns a ChangeMessageHandler.
func NewChangeMessageHandler(store MessageChanger, cache ChangedMessageCache, log *slog.Logger) *ChangeMessageHandler {
	if store == nil || cache == nil || log == nil {
		panic("command: NewChangeMessageHandler needs a store, a cache and a logger")
	}
	return &ChangeMessageHandler{store: store, cache: cache, log: log, now: time.Now}
}

// AnnounceTo makes h announce each change on feed, after its commit.
func (h *ChangeMessageHandler) AnnounceTo(feed MessageFeed) *ChangeMessageHandler {
	h.feed = feed
	return h
}

// ForgetIn makes h tell own of every delete.
func (h *ChangeMessageHandler) ForgetIn(own DeletedMessageForgetter) *ChangeMessageHandler {
	h.own = own
	return h
}

// Edit sets the message's text and returns the message as edited. It
// keeps created_at, and so the message's place in every page, and sets
// updated_at. A deleted message is not found.
func (h *ChangeMessageHandler) Edit(ctx context.Context, cmd EditMessage) (messageapi.MessageView, error) {
	if err := validation.Check(cmd).Err(); err != nil {
		return messageapi.MessageView{}, err
	}
	v, err := h.store.EditMessage(ctx, messageapi.MessageChange{
		ID: validation.CanonicalUUID(cmd.ID), UserID: cmd.UserID, Text: cmd.Text,
		At: messageapi.NewTime(h.now()).Time, AnyAuthor: cmd.AnyAuthor,
	})
	if err != nil {
		return messageapi.MessageView{}, err
	}
	h.writeThrough(ctx, v)
	return v, nil
}

// Delete makes the message a tombstone: its text empty, its reactions
// gone. Deleting a tombstone again succeeds and changes nothing.
func (h *ChangeMessageHandler) Delete(ctx context.Context, cmd DeleteMessage) error {
	if err := validation.Check(cmd).Err(); err != nil {
		return err
	}
	id := validation.CanonicalUUID(cmd.ID)
	v, err := h.store.DeleteMessage(ctx, messageapi.MessageChange{
		ID: id, UserID: cmd.UserID, At: messageapi.NewTime(h.now()).Time, AnyAuthor: cmd.AnyAuthor,
	})
	if h.own != nil {
		// Also after an error: the delete may have committed.
		h.own.ForgetMessage(ctx, id)
	}
	if err != nil {
		return err
	}
	h.writeThrough(ctx, v)
	return nil
}

// writeThrough puts a changed message into the cached pages and announces
// it, even when the client has gone. A failure does not fail the change:
// the cache drops pages it could not update (see
// pagecache.Cache.RefreshViews), and live clients read the change when
// they next read.
func (h *ChangeMessageHandler) writeThrough(ctx context.Context, v messageapi.MessageView) {
	ctx = context.WithoutCancel(ctx)
	if err := h.cache.UpdateMessage(ctx, v); err != nil {
		h.log.DebugContext(ctx, "cache update failed", "message_id", v.ID, "err", err)
	}
	announce(ctx, h.feed, h.log, messageapi.MessageChangedEvent(v))
}
