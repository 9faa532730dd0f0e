package httpapi

import (
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"messageapi"
	"messageapi/auth"
	"messageapi/command"
	"messageapi/query"
	"messageapi/sse"
)

// UseCases are what the handlers call. Handlers are thin: decode, call
// one command or query, encode.
type UseCases struct {
	CreateMessage  *command.CreateMessageHandler
	ChangeMessage  *command.ChangeMessageHandler
	AddReaction    *command.AddReactionHandler
	RemoveReaction *command.RemoveReactionHandler
	ListMessages   *query.ListMessagesHandler
	GetMessage     *query.GetMessageHandler
	ListReactions  *query.ListReactionsHandler
	Events         *sse.Hub
}

// Server is the API's HTTP transport over its use cases.
type Server struct {
	UseCases
	document apiDocument
}

// New returns the transport of uc.
func New(uc UseCases) (*Server, error) {
	document, err := newAPIDocument()
	if err != nil {
		return nil, err
	}
	return &Server{UseCases: uc, document: document}, nil
}

// Config is what the router needs besides the use cases.
type Config struct {
	Log            *slog.Logger
	Metrics        *Metrics
	AccessLevel    slog.Level
	Ready          func() bool // false: answer 503 (the schema is not migrated yet)
	RequestTimeout time.Duration
	RateLimit      int // requests per RateWindow and client; 0: off
	RateWindow     time.Duration
	TrustedProxies []netip.Prefix
	Auth           *auth.Verifier // nil: the API is open
	AuthReads      bool           // reads need a token too
	CORSOrigins    []string       // none: no CORS headers
}

// Handler returns the API's handler: middleware, routes, and JSON answers for
// unknown routes (404) and wrong methods (405 with Allow).
func (s *Server) Handler(cfg Config) http.Handler {
	r := chi.NewRouter()
	// HEAD is answered wherever GET is (the body is dropped); OPTIONS on
	// any route answers 204 with Allow, except a CORS preflight, which
	// allowOrigins answers before any token is asked for and before the
	// rate limiter, whose answers carry its headers. The token is
	// verified before the rate limiter, which counts a request by its
	// user, and refused after it, so a bad token counts against its
	// address. The document routes are public, like the contract.
	r.Use(middleware.GetHead, clientIP(cfg.TrustedProxies), withRequestID(cfg.Log), observe(cfg.Metrics, cfg.AccessLevel), recoverPanics,
		allowOrigins(cfg.CORSOrigins), authenticate(cfg.Auth), rateLimit(cfg.RateLimit, cfg.RateWindow))
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, messageapi.Errorf(messageapi.ENOTFOUND, "no route for %s %s", r.Method, r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		allowed, pattern := allowedMethods(r, req.URL.Path)
		if rc := chi.RouteContext(req.Context()); rc != nil {
			rc.RoutePatterns = append(rc.RoutePatterns[:0], pattern) // labels the metrics by route
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		if req.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeError(w, req, messageapi.Errorf(messageapi.EMETHOD, "method %s is not allowed on %s", req.Method, req.URL.Path))
	})

	// The document needs neither PostgreSQL nor Redis, so it is served
	// while they are unavailable.
	r.Get("/openapi.yaml", s.document.yaml.serve)
	r.Get("/openapi.json", s.document.json.serve)
	r.Group(func(r chi.Router) {
		r.Use(requireToken(cfg.Auth, cfg.AuthReads), requireReady(cfg.Ready), withTimeout(cfg.RequestTimeout))
		r.Get("/channels/{channel_id}/messages", s.handleListMessages)
		r.Post("/channels/{channel_id}/messages", s.handleCreateMessage)
		r.Get("/messages", s.handleListMessages)
		r.Post("/messages", s.handleCreateMessage)
		r.Get("/messages/{id}", s.handleGetMessage)
		r.Patch("/messages/{id}", s.handleEditMessage)
		r.Delete("/messages/{id}", s.handleDeleteMessage)
		r.Post("/messages/{id}/reactions", s.handleAddReaction)
		r.Get("/messages/{id}/reactions", s.handleListReactions)
		r.Delete("/messages/{id}/reactions/{type}", s.handleRemoveReaction)
	})
	// A stream outlives the request timeout, needs only Redis, and takes
	// its token from the query too, for browsers' EventSource.
	r.With(queryToken(cfg.Auth), requireToken(cfg.Auth, cfg.AuthReads)).Get("/events", s.handleEvents)
	return r
}

// allowedMethods lists the methods that have a route for path, and the
// route's pattern.
func allowedMethods(r *chi.Mux, path string) (allowed []string, pattern string) {
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if p := r.Find(chi.NewRouteContext(), m, path); p != "" {
			allowed, pattern = append(allowed, m), p
			if m == http.MethodGet {
				allowed = append(allowed, http.MethodHead)
			}
		}
	}
	return append(allowed, http.MethodOptions), pattern
}
