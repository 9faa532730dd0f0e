package messageapi

import "time"

// PutReactionParams asks to create the reaction of (MessageID, UserID,
// Type), or to set the score of the existing one. ID is the id a new
// reaction gets; At is the time of the change. A type new to the message
// is refused when the message has MaxTypes live types already (0: no
// cap). Unique makes it the user's only reaction on the message: their
// other types are deleted with it.
type PutReactionParams struct {
	ID        string
	MessageID string
	UserID    string
	Type      string
	Score     int
	At        time.Time
	MaxTypes  int
	Unique    bool
}

// PutReactionResult is the stored reaction after a put, its new version,
// whether it is new to the client (inserted, or revived after a delete),
// and the reactions it removed (Unique).
type PutReactionResult struct {
	Reaction Reaction
	Version  int64
	Created  bool
	Removed  []ReactionVersion
	// ChannelID is the channel of the reaction's message.
	ChannelID string
}

// ReactionVersion names one version of a reaction: the change that made
// it, for the projection.
type ReactionVersion struct {
	ID      string
	Version int64
}

// DeleteReactionParams asks to delete the reaction of (MessageID, UserID,
// Type) at At.
type DeleteReactionParams struct {
	MessageID string
	UserID    string
	Type      string
	At        time.Time
}

// DeleteReactionResult names the deleted reaction and its new version.
type DeleteReactionResult struct {
	ReactionID string
	Version    int64
	// ChannelID is the channel of the reaction's message.
	ChannelID string
}

// SweepParams asks for up to Limit changes at least MinAge old that no
// stream entry brought to the projection.
type SweepParams struct {
	MinAge time.Duration
	Limit  int
}

// FoldResult is what a fold did: how many changed rows it folded, the
// views it rewrote, and the reactions it left for later because another
// transaction held their rows or their message's view (a fold never
// waits for a lock, so one stuck process cannot stop the others).
type FoldResult struct {
	Folded  int
	Views   []MessageView
	Skipped []string
	// Changes are the folded changes as the live feed tells them.
	Changes []ReactionChange
}

// ReconcileParams asks to check the views of up to Limit messages after
// AfterID, in id order ("" starts at the first).
type ReconcileParams struct {
	AfterID string
	Limit   int
}

// ReconcileResult is one page of a reconcile: how many views were checked,
// the last message checked, the views rebuilt because they differed from
// their reactions, and the messages among them whose view had drifted (it
// disagreed with the changes recorded as folded, which no pending change
// explains).
type ReconcileResult struct {
	Checked int
	LastID  string
	Rebuilt []MessageView
	Drifted []string
}
