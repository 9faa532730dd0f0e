package httpapi_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"messageapi"
)

// memory is the storage of the use cases held in memory: a fake of every
// interface they consume, so the transport can be tested with neither
// PostgreSQL nor Redis. It keeps messages and reactions, not projections:
// a view shows no reaction counts, which the transport does not read.
type memory struct {
	mu        sync.Mutex
	messages  map[string]messageapi.Message
	order     []string                          // message ids, oldest first
	reactions map[[3]string]messageapi.Reaction // message, user, type
	versions  int64
	published []messageapi.ReactionChanged
	fail      error // when set, every storage call returns it
}

func newMemory() *memory {
	return &memory{messages: map[string]messageapi.Message{}, reactions: map[[3]string]messageapi.Reaction{}}
}

func (m *memory) failWith(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}

func notFound(what string) error {
	return messageapi.Errorf(messageapi.ENOTFOUND, "%s not found", what)
}

func (m *memory) CreateMessage(_ context.Context, msg messageapi.Message) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return false, m.fail
	}
	if _, ok := m.messages[msg.ID]; ok {
		return false, nil
	}
	m.messages[msg.ID] = msg
	m.order = append(m.order, msg.ID)
	return true, nil
}

func (m *memory) GetMessage(_ context.Context, id string) (messageapi.MessageView, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return messageapi.MessageView{}, m.fail
	}
	msg, ok := m.messages[id]
	if !ok {
		return messageapi.MessageView{}, notFound("message")
	}
	return messageapi.NewMessageView(msg), nil
}

func (m *memory) ListMessages(_ context.Context, r messageapi.MessageRange) ([]messageapi.MessageView, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	var out []messageapi.MessageView
	skip := r.Offset
	for i := len(m.order) - 1; i >= 0 && len(out) < r.Limit; i-- {
		if msg := m.messages[m.order[i]]; msg.ChannelID == r.Channel() {
			if skip > 0 {
				skip--
				continue
			}
			out = append(out, messageapi.NewMessageView(msg))
		}
	}
	return out, nil
}

// Latest is the page cache: it holds nothing, and loads every page.
func (m *memory) Latest(ctx context.Context, r messageapi.MessageRange, load messageapi.LoadViews) ([]messageapi.EncodedView, error) {
	return load(ctx, r)
}

func (m *memory) AddMessage(context.Context, messageapi.MessageView) error { return nil }

func (m *memory) UpdateMessage(context.Context, messageapi.MessageView) error { return nil }

func (m *memory) EditMessage(ctx context.Context, c messageapi.MessageChange) (messageapi.MessageView, error) {
	return m.change(c, func(msg *messageapi.Message) error {
		if msg.Deleted() {
			return notFound("message")
		}
		msg.Text = c.Text
		return nil
	})
}

func (m *memory) DeleteMessage(ctx context.Context, c messageapi.MessageChange) (messageapi.MessageView, error) {
	return m.change(c, func(msg *messageapi.Message) error {
		if msg.Deleted() {
			return nil
		}
		msg.Text, msg.DeletedAt = "", &msg.CreatedAt
		for key := range m.reactions {
			if key[0] == msg.ID {
				delete(m.reactions, key)
			}
		}
		return nil
	})
}

// change applies an edit or a delete to the message, with its author
// check. m.mu is not held.
func (m *memory) change(c messageapi.MessageChange, apply func(*messageapi.Message) error) (messageapi.MessageView, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return messageapi.MessageView{}, m.fail
	}
	msg, ok := m.messages[c.ID]
	switch {
	case !ok:
		return messageapi.MessageView{}, notFound("message")
	case !c.AnyAuthor && msg.UserID != c.UserID:
		return messageapi.MessageView{}, messageapi.Errorf(messageapi.EPERMISSION, "only the author of a message may change it")
	}
	if err := apply(&msg); err != nil {
		return messageapi.MessageView{}, err
	}
	at := messageapi.NewTime(c.At)
	msg.UpdatedAt = &at
	m.messages[c.ID] = msg
	return messageapi.NewMessageView(msg), nil
}

func (m *memory) PutReaction(_ context.Context, p messageapi.PutReactionParams) (messageapi.PutReactionResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return messageapi.PutReactionResult{}, m.fail
	}
	if msg, ok := m.messages[p.MessageID]; !ok || msg.Deleted() {
		return messageapi.PutReactionResult{}, notFound("message")
	}
	key := [3]string{p.MessageID, p.UserID, p.Type}
	r, existed := m.reactions[key]
	if !existed {
		r = messageapi.Reaction{ID: p.ID, MessageID: p.MessageID, UserID: p.UserID, Type: p.Type, CreatedAt: messageapi.NewTime(p.At)}
	}
	r.Score, r.UpdatedAt = p.Score, messageapi.NewTime(p.At)
	m.reactions[key] = r
	m.versions++
	return messageapi.PutReactionResult{Reaction: r, Version: m.versions, Created: !existed}, nil
}

func (m *memory) DeleteReaction(_ context.Context, p messageapi.DeleteReactionParams) (messageapi.DeleteReactionResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return messageapi.DeleteReactionResult{}, m.fail
	}
	key := [3]string{p.MessageID, p.UserID, p.Type}
	r, ok := m.reactions[key]
	if !ok {
		return messageapi.DeleteReactionResult{}, notFound("reaction")
	}
	delete(m.reactions, key)
	m.versions++
	return messageapi.DeleteReactionResult{ReactionID: r.ID, Version: m.versions}, nil
}

func (m *memory) OwnReactions(_ context.Context, ids []string, userID string) (map[string][]messageapi.Reaction, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	out := map[string][]messageapi.Reaction{}
	for key, r := range m.reactions {
		if key[1] == userID && slices.Contains(ids, key[0]) {
			out[key[0]] = append(out[key[0]], r)
		}
	}
	return out, nil
}

func (m *memory) ListReactions(_ context.Context, r messageapi.ReactionRange) ([]messageapi.Reaction, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	if _, ok := m.messages[r.MessageID]; !ok {
		return nil, notFound("message")
	}
	var out []messageapi.Reaction
	for key, x := range m.reactions {
		if key[0] == r.MessageID && (r.Type == "" || r.Type == x.Type) && (r.UserID == "" || r.UserID == x.UserID) {
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(a, b messageapi.Reaction) int { return b.CreatedAt.Compare(a.CreatedAt.Time) })
	return out[:min(len(out), r.Limit)], nil
}

// Publish takes the reaction changes the commands announce.
func (m *memory) Publish(_ context.Context, e messageapi.ReactionChanged) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.published = append(m.published, e)
	return nil
}

// memoryFeed is the live feed in memory.
type memoryFeed struct {
	mu      sync.Mutex
	entries []messageapi.FeedEntry
	added   chan struct{} // closed and replaced at every append
}

func newMemoryFeed() *memoryFeed { return &memoryFeed{added: make(chan struct{})} }

// Publish appends the event of a new message, as the API's feed does.
func (f *memoryFeed) Publish(_ context.Context, e messageapi.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := messageapi.FeedPosition{Ms: uint64(time.Now().UnixMilli()), Seq: uint64(len(f.entries))}
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	f.entries = append(f.entries, messageapi.FeedEntry{ID: id.String(), Type: e.Type, MessageID: e.MessageID,
		ChannelID: e.ChannelID, At: time.Now(), Data: data})
	close(f.added)
	f.added = make(chan struct{})
	return nil
}

// after returns the entries after the position after, and a channel
// closed at the next append.
func (f *memoryFeed) after(after string) ([]messageapi.FeedEntry, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pos, _ := messageapi.ParseFeedPosition(after)
	i := slices.IndexFunc(f.entries, func(e messageapi.FeedEntry) bool {
		p, _ := messageapi.ParseFeedPosition(e.ID)
		return p.After(pos)
	})
	if i < 0 {
		return nil, f.added
	}
	return slices.Clone(f.entries[i:]), f.added
}

func (f *memoryFeed) Read(ctx context.Context, after string, count int, block time.Duration) ([]messageapi.FeedEntry, error) {
	entries, added := f.after(after)
	if len(entries) == 0 {
		select {
		case <-added:
		case <-time.After(block):
		case <-ctx.Done():
		}
		entries, _ = f.after(after)
	}
	return entries[:min(len(entries), count)], nil
}

func (f *memoryFeed) Tail(_ context.Context, count, _ int) ([]messageapi.FeedEntry, string, error) {
	entries, _ := f.after("0-0")
	entries = entries[max(0, len(entries)-count):]
	return entries, "0-0", nil
}

func (f *memoryFeed) Has(_ context.Context, id string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.ContainsFunc(f.entries, func(e messageapi.FeedEntry) bool { return e.ID == id }), nil
}

func (f *memoryFeed) Since(_ context.Context, after string, count int) ([]messageapi.FeedEntry, bool, error) {
	entries, _ := f.after(after)
	return entries[:min(len(entries), count)], true, nil
}
