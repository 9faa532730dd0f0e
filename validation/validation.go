// Package validation checks the requests of the use cases: each request
// struct states its rules in `validate` tags, and this package runs them
// with github.com/go-playground/validator/v10. The project's own rules are
// registered here, once, each with the text a client reads when a field
// breaks it; the texts themselves are the messageapi *Rule constants, so
// the OpenAPI document, the errors and the checks say the same.
//
// A field's name in an error is its `field` tag, else its `json` name.
// Checks stop at a field's first broken rule, so "required" comes first
// where an empty value is wrong, and "omitnil" or "omitempty" first where
// an absent one is right.
package validation

import (
	"errors"
	"reflect"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"
	"github.com/google/uuid"

	"messageapi"
)

// rule is a check of one field's value and what a client is told when it
// fails.
type rule struct {
	check func(reflect.Value) bool
	text  string
}

// rules are the project's own validate tags.
var rules = map[string]rule{
	"text":          {str(messageapi.ValidText), messageapi.TextRule},
	"user_id":       {str(messageapi.ValidUserID), messageapi.UserIDRule},
	"channel_id":    {str(messageapi.ValidChannelID), messageapi.ChannelIDRule},
	"reaction_type": {str(messageapi.ValidReactionType), messageapi.ReactionTypeRule},
	"uuid":          {str(validUUID), messageapi.UUIDRule},
	"uuidv7":        {str(validUUIDv7), messageapi.UUIDv7Rule},
	"score":         {between(messageapi.MinScore, messageapi.MaxScore), messageapi.ScoreRule},
	"limit":         {between(1, messageapi.MaxPageSize), messageapi.LimitRule},
	"page":          {between(1, int64(^uint(0)>>1)), messageapi.PageRule},
	"feed_position": {str(validFeedPosition), messageapi.FeedPositionRule},
	"event_duration": {func(v reflect.Value) bool {
		d, err := time.ParseDuration(v.String())
		return v.Kind() == reflect.String && err == nil && d >= messageapi.MinEventDuration && d <= messageapi.MaxEventDuration
	}, messageapi.EventDurationRule},
}

// builtin are the texts of the library's tags the requests use.
var builtin = map[string]func(param string) string{
	"required": func(string) string { return messageapi.RequiredRule },
}

var validate = newValidate()

func newValidate() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		if name := f.Tag.Get("field"); name != "" {
			return name
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			return f.Name
		}
		return name
	})
	for tag, r := range rules {
		check := r.check
		if err := v.RegisterValidation(tag, func(fl validator.FieldLevel) bool { return check(fl.Field()) }); err != nil {
			panic(err)
		}
	}
	return v
}

// Check runs the rules of req, a struct, and returns what is wrong with
// each field, empty when nothing is; a use case adds the checks that
// span fields, then returns its Err.
func Check(req any) messageapi.FieldErrors {
	f := messageapi.FieldErrors{}
	err := validate.Struct(req)
	if err == nil {
		return f
	}
	var broken validator.ValidationErrors
	if !errors.As(err, &broken) {
		panic("validation: " + err.Error()) // a request type without rules, a programming error
	}
	for _, e := range broken {
		f.Add(e.Field(), text(e.Tag(), e.Param()))
	}
	return f
}

// Value checks one value against tags, records under field the text of
// the first rule it breaks, and reports whether it is valid. It is for
// the fields whose rules depend on the others.
func Value(f messageapi.FieldErrors, field string, value any, tags string) bool {
	ok, why := Valid(value, tags)
	if !ok {
		f.Add(field, why)
	}
	return ok
}

// Valid checks one value against tags and returns the text of the first
// rule it breaks.
func Valid(value any, tags string) (ok bool, why string) {
	err := validate.Var(value, tags)
	if err == nil {
		return true, ""
	}
	var broken validator.ValidationErrors
	if !errors.As(err, &broken) {
		panic("validation: " + err.Error())
	}
	return false, text(broken[0].Tag(), broken[0].Param())
}

// text is what a client is told of a broken tag.
func text(tag, param string) string {
	if r, ok := rules[tag]; ok {
		return r.text
	}
	if t, ok := builtin[tag]; ok {
		return t(param)
	}
	panic("validation: no text for the rule " + tag)
}

// str adapts a rule on strings.
func str(valid func(string) bool) func(reflect.Value) bool {
	return func(v reflect.Value) bool { return v.Kind() == reflect.String && valid(v.String()) }
}

// between is a rule on integers: from lo to hi.
func between(lo, hi int64) func(reflect.Value) bool {
	return func(v reflect.Value) bool {
		if !v.CanInt() {
			return false
		}
		n := v.Int()
		return n >= lo && n <= hi
	}
}

// validUUID accepts the forms of a UUID that uuid.Parse reads, with braces
// only as a pair.
func validUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && messageapi.ValidUUIDBraces(s)
}

// validUUIDv7 accepts a UUID of version 7 and the RFC 4122 variant.
func validUUIDv7(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && messageapi.ValidUUIDBraces(s) && u.Version() == 7 && u.Variant() == uuid.RFC4122
}

// validFeedPosition accepts the id of an event of the live feed.
func validFeedPosition(s string) bool {
	_, ok := messageapi.ParseFeedPosition(s)
	return ok && len(s) <= 41
}

// CanonicalUUID returns a UUID that Check has accepted in its canonical
// form.
func CanonicalUUID(s string) string {
	u, err := uuid.Parse(s)
	if err != nil {
		return ""
	}
	return u.String()
}
