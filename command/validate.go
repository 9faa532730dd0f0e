package command

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/go-playground/validator/v10"
	"github.com/google/uuid"

	"messageapi"
)

// fieldMessages says, for each validation tag, what a failing field must
// be. Each is written for a person reading the 400 response.
var fieldMessages = map[string]string{
	"required":      "is required",
	"message_text":  messageapi.TextRule,
	"user_id":       messageapi.UserIDRule,
	"reaction_type": messageapi.ReactionTypeRule,
	"score":         messageapi.ScoreRule,
	"uuid7":         "must be a UUIDv7",
	"uuid":          "must be a UUID",
}

// newValidator returns a validator that knows the domain's field rules and
// names fields by their JSON names, as clients know them.
func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			name, _, _ = strings.Cut(f.Tag.Get("field"), ",")
		}
		return name
	})
	str := func(pred func(string) bool) validator.Func {
		return func(fl validator.FieldLevel) bool { return pred(fl.Field().String()) }
	}
	rules := map[string]validator.Func{
		"message_text":  str(messageapi.ValidText),
		"user_id":       str(messageapi.ValidUserID),
		"reaction_type": str(messageapi.ValidReactionType),
		"uuid7": str(func(s string) bool {
			u, err := uuid.Parse(s)
			return err == nil && u.Version() == 7 && u.Variant() == uuid.RFC4122
		}),
		"uuid": str(func(s string) bool { _, err := uuid.Parse(s); return err == nil }),
		"score": func(fl validator.FieldLevel) bool {
			n := fl.Field().Int()
			return n >= messageapi.MinScore && n <= messageapi.MaxScore
		},
	}
	for tag, fn := range rules {
		if err := v.RegisterValidation(tag, fn); err != nil {
			panic(fmt.Sprintf("register validation %q: %v", tag, err)) // a programming error, caught by any test
		}
	}
	return v
}

// validate checks cmd against its tags and returns an invalid-argument
// error that names every failing field.
func validate(v *validator.Validate, cmd any) error {
	err := v.Struct(cmd)
	if err == nil {
		return nil
	}
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return fmt.Errorf("validate %T: %w", cmd, err)
	}
	fields := make(map[string]string, len(verrs))
	for _, fe := range verrs {
		msg, ok := fieldMessages[fe.Tag()]
		if !ok {
			msg = "is invalid"
		}
		if _, seen := fields[fe.Field()]; !seen {
			fields[fe.Field()] = msg
		}
	}
	return messageapi.InvalidFields(fields)
}
