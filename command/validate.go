package command

import (
	"github.com/google/uuid"

	"messageapi"
)

// checkUserID records what is wrong with a user id, if anything.
func checkUserID(f messageapi.FieldErrors, field, userID string) {
	if f.Check(userID != "", field, messageapi.RequiredRule) {
		f.Check(messageapi.ValidUserID(userID), field, messageapi.UserIDRule)
	}
}

// checkReactionType records what is wrong with a reaction type, if anything.
func checkReactionType(f messageapi.FieldErrors, field, reactionType string) {
	if f.Check(reactionType != "", field, messageapi.RequiredRule) {
		f.Check(messageapi.ValidReactionType(reactionType), field, messageapi.ReactionTypeRule)
	}
}

// parseMessageID returns a message id in canonical form, or records why it
// is not one and returns "".
func parseMessageID(f messageapi.FieldErrors, field, id string) string {
	u, err := uuid.Parse(id)
	if !f.Check(err == nil && messageapi.ValidUUIDBraces(id), field, messageapi.UUIDRule) {
		return ""
	}
	return u.String()
}
