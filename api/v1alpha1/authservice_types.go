package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// RotateAnnotation asks for an immediate key rotation: set it to any value that differs from
// status.lastRotationRequest (a timestamp is a good choice) and the operator rotates once.
const RotateAnnotation = "auth.hiringo.tech/rotate"

// AuthService is an auth deployment run by the operator: rotating ES256 signing keys, the Redis
// store of the token blacklist and the auth-server Deployment that cluster services call.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=as;authsvc,categories=auth
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Active Key",type=string,JSONPath=`.status.activeKeyID`
// +kubebuilder:printcolumn:name="Next Rotation",type=string,JSONPath=`.status.nextRotationTime`,description="When the next key takes over (a future time, so shown as a timestamp)"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Reason",type=string,priority=1,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Replicas",type=integer,priority=1,JSONPath=`.spec.server.replicas`
// +kubebuilder:printcolumn:name="Rotation Interval",type=string,priority=1,JSONPath=`.spec.signingKeys.rotationInterval`
// +kubebuilder:printcolumn:name="URL",type=string,priority=1,JSONPath=`.status.serverURL`
// +kubebuilder:printcolumn:name="Issuer URL",type=string,priority=1,JSONPath=`.status.issuerURL`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS-1035 label: lower-case letters, digits and '-', starting with a letter and ending with a letter or digit (it names the Services NAME-authserver, NAME-issuer and NAME-redis); choose such a name",fieldPath=".metadata"
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 46",message="metadata.name must be at most 46 characters: the operator names objects after it, and the longest limit is the NAME-redis StatefulSet's pod label controller-revision-hash (NAME-redis-<10-character hash>, at most 63); choose a shorter name",fieldPath=".metadata"
// +kubebuilder:validation:XValidation:rule="!has(self.spec.redis) || !has(self.spec.redis.managed) || !has(self.spec.redis.managed.highAvailability) || size(self.metadata.name) <= 37",message="metadata.name must be at most 37 characters with spec.redis.managed.highAvailability: the NAME-redis-sentinel StatefulSet's pod label controller-revision-hash (NAME-redis-sentinel-<10-character hash>) has at most 63; choose a shorter name",fieldPath=".metadata"
type AuthService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:default={}
	Spec   AuthServiceSpec   `json:"spec,omitzero"`
	Status AuthServiceStatus `json:"status,omitempty"`
}

// AuthServiceList is a list of AuthService objects.
//
// +kubebuilder:object:root=true
type AuthServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AuthService `json:"items"`
}

// AuthServiceSpec is what the user asks for. The rule across fields skips durations that do
// not parse: their own pattern reports those.
//
// +kubebuilder:validation:XValidation:rule="!has(self.signingKeys) || !has(self.tokens) || !has(self.signingKeys.rotationInterval) || !has(self.tokens.maxLifetime) || !has(self.tokens.leeway) || !self.signingKeys.rotationInterval.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || !self.tokens.maxLifetime.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || !self.tokens.leeway.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self.signingKeys.rotationInterval) > duration(self.tokens.maxLifetime) + duration(self.tokens.leeway)",message="spec.signingKeys.rotationInterval must be longer than spec.tokens.maxLifetime plus spec.tokens.leeway: raise rotationInterval or lower maxLifetime"
type AuthServiceSpec struct {
	// Server configures the auth-server Deployment and Service.
	// +kubebuilder:default={}
	// +optional
	Server ServerSpec `json:"server,omitzero"`

	// Tokens describes the tokens the keys sign; it bounds how long a retired key stays published.
	// +kubebuilder:default={}
	// +optional
	Tokens TokensSpec `json:"tokens,omitzero"`

	// SigningKeys configures the signing keys and their rotation.
	// +kubebuilder:default={}
	// +optional
	SigningKeys SigningKeysSpec `json:"signingKeys,omitzero"`

	// Redis is the store of the token blacklist: exactly one of managed or external.
	// Left out, the operator runs a managed Redis with persistence.
	// +kubebuilder:default={managed:{}}
	// +optional
	Redis RedisSpec `json:"redis,omitzero"`

	// Issuance configures the issuer: the Deployment that holds the private keys and issues
	// and refreshes tokens for the in-cluster callers it lists.
	// +kubebuilder:default={}
	// +optional
	Issuance IssuanceSpec `json:"issuance,omitzero"`

	// Introspection configures RFC 7662 token introspection on the verifier
	// (POST /auth/introspect), for the resource servers and gateways that must see logouts.
	// +optional
	Introspection IntrospectionSpec `json:"introspection,omitzero"`
}

// IntrospectionSpec lists who may introspect tokens.
type IntrospectionSpec struct {
	// Clients are the ServiceAccounts allowed to call POST /auth/introspect on the verifier,
	// each authenticated by a projected ServiceAccount token whose audience is status.issuer.
	// Empty: every caller is refused (403). With any, the verifier runs as its own
	// ServiceAccount, which may create TokenReviews.
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=namespace
	// +listMapKey=serviceAccountName
	// +optional
	Clients []IntrospectionClient `json:"clients,omitempty"`
}

// IntrospectionClient names one ServiceAccount allowed to introspect tokens.
type IntrospectionClient struct {
	// Namespace of the ServiceAccount.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="spec.introspection.clients[].namespace must be a namespace name: lowercase letters, digits and '-', starting and ending with a letter or digit"
	Namespace string `json:"namespace"`

	// ServiceAccountName is the name of the ServiceAccount.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="spec.introspection.clients[].serviceAccountName must be a ServiceAccount name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
	ServiceAccountName string `json:"serviceAccountName"`
}

// IssuanceSpec configures token issuance. The issuer always runs, so refresh tokens keep
// working; with no clients, every call to /auth/token is refused.
type IssuanceSpec struct {
	// Clients are the ServiceAccounts allowed to call POST /auth/token (issuance) and
	// POST /auth/revoke (RFC 7009 revocation), each authenticated by a projected
	// ServiceAccount token whose audience is status.issuer. Empty: issuance off.
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=namespace
	// +listMapKey=serviceAccountName
	// +optional
	Clients []IssuanceClient `json:"clients,omitempty"`

	// Replicas of the issuer.
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// SingleSession restores the original service's one session per user: a new issuance
	// ends the user's earlier sessions. Off, a user may be logged in on several devices.
	// +optional
	SingleSession bool `json:"singleSession,omitempty"`

	// RefreshGracePeriod is how long after a refresh the refresh token it replaced still
	// gets a pair of the same new stamp, as long as the new refresh token has not been
	// used: a client that lost the answer to a refresh and retries stays logged in. A thief
	// who replays a stolen refresh token within it, before the rightful client uses its new
	// one, gets a working pair instead of ending the session. 0s makes every second use of
	// a refresh token reuse, which revokes the session.
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="spec.issuance.refreshGracePeriod must be a duration such as 30s, 10s or 0s (units h, m, s, ms)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) <= duration('5m')",message="spec.issuance.refreshGracePeriod must be at most 5m: a stolen refresh token may be replayed that long after its rotation; lower it (0s turns it off)"
	// +optional
	RefreshGracePeriod *metav1.Duration `json:"refreshGracePeriod,omitempty"`

	// RefreshesPerMinute bounds the refreshes of one session per minute (the grace
	// period's answers included); more are answered 429 with Retry-After. 0 for no bound.
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=600
	// +optional
	RefreshesPerMinute *int32 `json:"refreshesPerMinute,omitempty"`
}

// IssuanceClient names one ServiceAccount allowed to obtain tokens for users.
type IssuanceClient struct {
	// Namespace of the ServiceAccount.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="spec.issuance.clients[].namespace must be a namespace name: lowercase letters, digits and '-', starting and ending with a letter or digit"
	Namespace string `json:"namespace"`

	// ServiceAccountName is the name of the ServiceAccount.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="spec.issuance.clients[].serviceAccountName must be a ServiceAccount name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
	ServiceAccountName string `json:"serviceAccountName"`
}

// ServerSpec configures the auth-server Deployment and its Service.
type ServerSpec struct {
	// Image of the auth server. Empty means the image the operator itself runs.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Image string `json:"image,omitempty"`

	// Replicas of the auth server.
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// Port of the auth-server Service; the pods listen on 8080 (named http).
	// +kubebuilder:default=80
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`

	// Resources of the auth-server container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// NodeSelector of the auth-server pods.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// Tolerations of the auth-server pods.
	// +listType=atomic
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// Affinity of the auth-server pods.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// TopologySpreadConstraints of the auth-server pods. Their label selectors may use
	// app.kubernetes.io/instance=<name> and app.kubernetes.io/name=authserver.
	// +listType=atomic
	// +optional
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`

	// PriorityClassName of the auth-server pods.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`

	// ImagePullSecrets of the auth-server pods.
	// +listType=atomic
	// +optional
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`

	// CORSOrigins are the origins allowed to call the server from a browser; "*" allows any.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=256
	// +kubebuilder:validation:items:Pattern=`^[^,\s]+$`
	// +listType=set
	// +optional
	CORSOrigins []string `json:"corsOrigins,omitempty"`

	// CompatStatusCodes answers with the original service's status codes: 400 for a missing
	// token and 500 for a blacklisted one (bodies are the same either way).
	// +optional
	CompatStatusCodes bool `json:"compatStatusCodes,omitempty"`

	// LogLevel of the auth server.
	// +kubebuilder:validation:Enum=debug;info;warn;error
	// +kubebuilder:default=info
	// +optional
	LogLevel string `json:"logLevel,omitempty"`

	// PodDisruptionBudget protects the auth server from voluntary disruptions.
	// +optional
	PodDisruptionBudget PodDisruptionBudgetSpec `json:"podDisruptionBudget,omitzero"`

	// Tracing exports OpenTelemetry spans of the verifier and the issuer (their routes and
	// Redis calls). Left out, tracing is off and nothing is wrapped.
	// +optional
	Tracing TracingSpec `json:"tracing,omitzero"`

	// TLS makes the verifier and the issuer serve HTTPS from a kubernetes.io/tls Secret, so
	// that the token issuer can be an https URL (the Kubernetes API server's JWT
	// authenticator requires one). Left out, both serve plain HTTP, for in-mesh use.
	// +optional
	TLS *ServerTLSSpec `json:"tls,omitempty"`
}

// ServerTLSSpec names the serving certificate of both roles.
type ServerTLSSpec struct {
	// SecretName is a kubernetes.io/tls Secret in the AuthService's namespace (tls.crt,
	// tls.key and, for status.tls.caBundle, ca.crt), such as a cert-manager Certificate
	// writes. Its certificate must name the verifier's and the issuer's Services
	// (NAME-authserver.NAMESPACE.svc, NAME-issuer.NAMESPACE.svc). A renewed certificate is
	// served without a restart; while the Secret is missing or invalid the pods keep
	// serving the last good one and the TLSReady condition says what is wrong.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="spec.server.tls.secretName must be a Secret name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
	SecretName string `json:"secretName"`

	// Port of the verifier's and the issuer's Services for HTTPS; spec.server.port is for
	// plain HTTP only.
	// +kubebuilder:default=443
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`
}

// TracingSpec configures the auth servers' OpenTelemetry export.
type TracingSpec struct {
	// OTLPEndpoint is the OTLP/HTTP base URL of a collector, such as
	// http://otel-collector.observability.svc:4318; /v1/traces is appended. Empty: off.
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self == '' || self.matches('^https?://[^/?#[:space:]]+(/[^?#[:space:]]*)?$')",message="spec.server.tracing.otlpEndpoint must be an http or https base URL such as http://otel-collector.observability.svc:4318"
	// +optional
	OTLPEndpoint string `json:"otlpEndpoint,omitempty"`
}

// PodDisruptionBudgetSpec configures the optional PodDisruptionBudget of the auth server.
type PodDisruptionBudgetSpec struct {
	// Enabled creates the PodDisruptionBudget.
	// +optional
	Enabled bool `json:"enabled,omitempty"`

	// MaxUnavailable auth-server pods during a voluntary disruption.
	// +kubebuilder:default=1
	// +kubebuilder:validation:XIntOrString
	// +optional
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`
}

// TokensSpec describes the tokens that the signing keys sign. The rules across fields skip
// durations that do not parse: their own pattern reports those.
//
// +kubebuilder:validation:XValidation:rule="!has(self.requireAudience) || !self.requireAudience || (has(self.audiences) && size(self.audiences) > 0)",message="spec.tokens.requireAudience needs spec.tokens.audiences: list the audiences tokens must name, or remove requireAudience"
// +kubebuilder:validation:XValidation:rule="!has(self.maxLifetime) || !has(self.refreshLifetime) || !self.maxLifetime.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || !self.refreshLifetime.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self.refreshLifetime) >= duration(self.maxLifetime)",message="spec.tokens.refreshLifetime must be at least spec.tokens.maxLifetime: a refresh token outlives the access tokens it renews; raise refreshLifetime or lower maxLifetime"
// +kubebuilder:validation:XValidation:rule="!has(self.maxLifetime) || !has(self.sessionMaxLifetime) || !self.maxLifetime.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || !self.sessionMaxLifetime.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self.sessionMaxLifetime) >= duration(self.maxLifetime)",message="spec.tokens.sessionMaxLifetime must be at least spec.tokens.maxLifetime: a session lasts at least as long as its first access token; raise sessionMaxLifetime or lower maxLifetime"
type TokensSpec struct {
	// MaxLifetime is the longest lifetime of a token, from issue to expiry. A retired key
	// stays published for this long (plus leeway) after it stops signing.
	// +kubebuilder:default="15m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="spec.tokens.maxLifetime must be a duration such as 15m, 90m or 1h30m (units h, m, s, ms)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1m') && duration(self) <= duration('24h'))",message="spec.tokens.maxLifetime must be between 1m and 24h: use a short-lived access token and refresh it"
	// +optional
	MaxLifetime metav1.Duration `json:"maxLifetime,omitzero"`

	// Leeway is the clock skew tolerated when checking exp, nbf and iat.
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="spec.tokens.leeway must be a duration such as 30s, 90m or 1h30m (units h, m, s, ms)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) <= duration('5m'))",message="spec.tokens.leeway must be at most 5m: fix the clocks (NTP) rather than widen the leeway"
	// +optional
	Leeway metav1.Duration `json:"leeway,omitzero"`

	// RefreshLifetime is the lifetime of a refresh token. A retired key stays in the
	// signing-key Secret (public part only, for the issuer) this long after it stops signing,
	// so no refresh token fails because of a rotation; it leaves the JWKS at expiresAt.
	// +kubebuilder:default="720h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="spec.tokens.refreshLifetime must be a duration such as 720h, 90m or 1h30m (units h, m, s, ms)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) <= duration('2160h')",message="spec.tokens.refreshLifetime must be at most 2160h (90 days): users log in again after that"
	// +optional
	RefreshLifetime metav1.Duration `json:"refreshLifetime,omitzero"`

	// SessionMaxLifetime is the absolute lifetime of a session from its login: refreshes
	// are refused after it, and no token of the session expires later, however often it
	// was refreshed (each refresh otherwise starts refreshLifetime again).
	// +kubebuilder:default="2160h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="spec.tokens.sessionMaxLifetime must be a duration such as 2160h, 720h or 12h (units h, m, s, ms)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1h') && duration(self) <= duration('8760h'))",message="spec.tokens.sessionMaxLifetime must be between 1h and 8760h (one year): users log in again after it"
	// +optional
	SessionMaxLifetime metav1.Duration `json:"sessionMaxLifetime,omitzero"`

	// Issuer is the iss claim of issued tokens and the issuer of the OIDC discovery document.
	// Empty means the verifier's in-cluster URL (status.serverURL); status.issuer shows the
	// value in use.
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.matches('^https?://[^/?#[:space:]]+(/[^?#[:space:]]*)?$') && isURL(self)",message="spec.tokens.issuer must be an http or https URL without query or fragment, such as https://auth.example.com"
	// +optional
	Issuer string `json:"issuer,omitempty"`

	// Audiences are the aud claim of issued tokens, and the audiences the verifier accepts:
	// an access token whose aud names none of them is refused. Empty issues tokens without
	// aud and accepts any. RFC 9068 consumers (the Kubernetes API server, Istio, Envoy)
	// check aud: list the audience each of them is configured with.
	// +kubebuilder:validation:MaxItems=16
	// +listType=set
	// +optional
	Audiences []Audience `json:"audiences,omitempty"`

	// RequireAudience refuses access tokens without aud too: the original service's tokens
	// (and any seed-format token) stop verifying. Off, they keep verifying as before.
	// +optional
	RequireAudience bool `json:"requireAudience,omitempty"`
}

// Audience is one value of a token's aud claim.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=256
// +kubebuilder:validation:XValidation:rule="!self.matches('[,[:space:]]')",message="an audience in spec.tokens.audiences must be one value without commas or spaces, such as api.example.com: list several as separate items"
type Audience string

// SigningAlgorithm is a JWS signing algorithm.
// +kubebuilder:validation:Enum=ES256
type SigningAlgorithm string

// AlgorithmES256 is ECDSA with P-256 and SHA-256.
const AlgorithmES256 SigningAlgorithm = "ES256"

// KeyID is the kid of a signing key: the base64url RFC 7638 SHA-256 thumbprint of its public key.
// +kubebuilder:validation:MaxLength=43
// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9_-]{43}$')",message="a revoked key ID must be a kid as status.keys lists it: 43 characters of A-Z, a-z, 0-9, '_' and '-'"
type KeyID string

// SigningKeysSpec configures the signing keys and their rotation.
type SigningKeysSpec struct {
	// Algorithm of the signing keys.
	// +kubebuilder:default=ES256
	// +optional
	Algorithm SigningAlgorithm `json:"algorithm,omitempty"`

	// RotationInterval is how long a key signs before the next key takes over. The next key
	// is published a whole interval before it signs, so every pod can verify it first.
	// +kubebuilder:default="720h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="spec.signingKeys.rotationInterval must be a duration such as 720h, 90m or 1h30m (units h, m, s, ms)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1h'))",message="spec.signingKeys.rotationInterval must be at least 1h: every pod must receive the next key (Secret propagation takes minutes) before it signs"
	// +optional
	RotationInterval metav1.Duration `json:"rotationInterval,omitzero"`

	// MinPublishTime is how long a next key is published before it may sign: after a
	// rotation, a requested rotation or the revocation of the active key waits this long for a
	// new next key. Empty means the operator's --min-key-publish-time (5m by default). Raise it
	// above the JWKS refresh period of the consumers that verify tokens themselves (Istio 20m,
	// Envoy's jwt_authn 10m by default), or they reject the new key's tokens until they refresh.
	// The auth server's JWKS Cache-Control max-age is derived from it (docs/operations.md).
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="spec.signingKeys.minPublishTime must be a duration such as 5m, 25m or 1h (units h, m, s, ms)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (duration(self) >= duration('1s') && duration(self) <= duration('168h'))",message="spec.signingKeys.minPublishTime must be between 1s and 168h"
	// +optional
	MinPublishTime *metav1.Duration `json:"minPublishTime,omitempty"`

	// RevokedKeyIDs are compromised keys: each is removed at once and every token it signed
	// stops verifying. Revoking the active key promotes the next key immediately.
	// +kubebuilder:validation:MaxItems=100
	// +listType=set
	// +optional
	RevokedKeyIDs []KeyID `json:"revokedKeyIDs,omitempty"`
}

// RedisSpec selects the Redis that stores the token blacklist.
//
// +kubebuilder:validation:XValidation:rule="has(self.managed) != has(self.external)",message="spec.redis must set exactly one of managed or external: remove one of them"
type RedisSpec struct {
	// KeyPrefix is the prefix of every Redis key and of the revocation channel that this
	// AuthService's auth servers use. Empty: derived from the AuthService's namespace, name and
	// UID (see status.redisKeyPrefix), so AuthServices that share a Redis never share a
	// blacklist. Set it only to keep a blacklist across a re-created AuthService: to the
	// status.redisKeyPrefix of the old one. It must have the derived prefixes' form,
	// authserver:<namespace>.<id>: with this AuthService's namespace, no further colon and
	// nothing a Redis ACL pattern would read as a wildcard: then no prefix of one tenant
	// starts another's, and no tenant can name another namespace's key space.
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.matches('^authserver:[a-z0-9]([-a-z0-9]*[a-z0-9])?[.][a-z0-9][-a-z0-9.]*:$')",message="spec.redis.keyPrefix must be authserver:<namespace>.<id>: (this AuthService's namespace, then lower-case letters, digits, '-' or '.', ending in one ':'), such as authserver:prod.auth.2f6c…: — copy the old AuthService's status.redisKeyPrefix, or remove the field to use the derived one"
	// +optional
	KeyPrefix string `json:"keyPrefix,omitempty"`

	// Managed runs a Redis for this AuthService, with a generated password and AOF persistence.
	// +optional
	Managed *ManagedRedisSpec `json:"managed,omitempty"`

	// External connects to a Redis the user runs: single node, Sentinel or Cluster.
	// +optional
	External *ExternalRedisSpec `json:"external,omitempty"`
}

// AppendFsync is Redis's appendfsync policy.
// +kubebuilder:validation:Enum=always;everysec;no
type AppendFsync string

// ManagedRedisSpec configures the Redis the operator runs.
//
// +kubebuilder:validation:XValidation:rule="!has(self.highAvailability) || !has(self.persistence) || !has(self.persistence.enabled) || self.persistence.enabled",message="spec.redis.managed.highAvailability needs spec.redis.managed.persistence.enabled: a replica restarted on an empty volume could be promoted without the blacklist; enable persistence or remove highAvailability"
type ManagedRedisSpec struct {
	// Image of Redis.
	// +kubebuilder:default="redis:7.4-alpine"
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Image string `json:"image,omitempty"`

	// Resources of the Redis container. Without a memory limit, the limit is sized for
	// sessionCapacity sessions (docs/operator.md gives the formula), raised to the memory
	// request when that is higher; without a memory request, one equal to the limit.
	// redis.conf's maxmemory is 60 % of the limit. Sentinels and the topology init step have
	// small fixed resources of their own.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// SessionCapacity is how many sessions the store must hold: those whose latest refresh
	// token has not expired, over every user. It sizes the default memory of the Redis
	// container; a memory limit in resources replaces that.
	// +kubebuilder:default=100000
	// +kubebuilder:validation:Minimum=1000
	// +kubebuilder:validation:Maximum=100000000
	// +optional
	SessionCapacity *int32 `json:"sessionCapacity,omitempty"`

	// Persistence keeps the blacklist on a PersistentVolumeClaim (a StatefulSet); when
	// disabled Redis runs as a Deployment on an emptyDir and a pod restart loses it.
	// +kubebuilder:default={}
	// +optional
	Persistence RedisPersistenceSpec `json:"persistence,omitzero"`

	// AppendFsync is the AOF fsync policy. "always" (the default) makes every logout durable
	// before it is answered; "everysec" may lose the last second of logouts on a crash.
	// +kubebuilder:default=always
	// +optional
	AppendFsync AppendFsync `json:"appendFsync,omitempty"`

	// HighAvailability runs Redis as a primary with replicas and Sentinels that fail over
	// when the primary is lost. Left out, Redis is one pod. Switching either way keeps every
	// entry (docs/redis-ha.md). It needs persistence: a replica that restarts empty would
	// be a failover target without the blacklist.
	// +optional
	HighAvailability *RedisHighAvailabilitySpec `json:"highAvailability,omitempty"`
}

// RedisHighAvailabilitySpec sizes the replicated managed Redis and its Sentinels.
//
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicasAcked) || !has(self.replicas) || self.minReplicasAcked <= self.replicas - 1",message="spec.redis.managed.highAvailability.minReplicasAcked must be at most replicas - 1 (the replicas besides the primary): lower minReplicasAcked or raise replicas"
type RedisHighAvailabilitySpec struct {
	// Replicas is the number of Redis pods, the primary included.
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=9
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// Sentinels is the number of Sentinel pods; a majority of them must agree to fail over,
	// so the number is odd.
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=3
	// +kubebuilder:validation:Maximum=9
	// +kubebuilder:validation:XValidation:rule="self % 2 == 1",message="spec.redis.managed.highAvailability.sentinels must be odd (3, 5, 7 or 9) so that a majority can always be formed: use an odd number"
	// +optional
	Sentinels *int32 `json:"sentinels,omitempty"`

	// MinReplicasAcked is how many replicas must have a logout's write before it is answered
	// 200 (Redis WAIT): a failover cannot then lose an acknowledged logout. With fewer
	// replicas reachable, logout answers 503 (verify keeps working). 0 answers after the
	// primary alone and risks losing the last logouts in a failover.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=8
	// +optional
	MinReplicasAcked *int32 `json:"minReplicasAcked,omitempty"`
}

// RedisPersistenceSpec configures the volume of the managed Redis.
type RedisPersistenceSpec struct {
	// Enabled stores the data on a PersistentVolumeClaim.
	// +kubebuilder:default=true
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// Size of the PersistentVolumeClaim.
	// +kubebuilder:default="1Gi"
	// +optional
	Size *resource.Quantity `json:"size,omitempty"`

	// StorageClassName of the PersistentVolumeClaim; empty uses the cluster's default class.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`
}

// RedisAddress is a host:port pair.
// +kubebuilder:validation:MaxLength=260
// +kubebuilder:validation:XValidation:rule="self.matches('^[^[:space:],:]+:[0-9]{1,5}$') || self.matches('^[[][0-9a-fA-F:.]+[]]:[0-9]{1,5}$')",message="a Redis address must be host:port, such as redis.example.com:6379 or [fd00::1]:6379"
type RedisAddress string

// ExternalRedisSpec connects the auth server to a Redis the user runs.
//
// +kubebuilder:validation:XValidation:rule="self.db == 0 || size(self.addresses) == 1 || has(self.masterName)",message="spec.redis.external.db needs a single address or a Sentinel masterName: Redis Cluster only has database 0"
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'Sentinel' || has(self.masterName)",message="spec.redis.external.mode Sentinel needs spec.redis.external.masterName: set the Sentinel master name"
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode == 'Auto' || self.mode == 'Sentinel' || !has(self.masterName)",message="spec.redis.external.masterName is a Sentinel setting: remove it or set mode to Sentinel or Auto"
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'Standalone' || size(self.addresses) == 1",message="spec.redis.external.mode Standalone takes exactly one address: list one, or choose mode Cluster or Sentinel"
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'Cluster' || self.db == 0",message="spec.redis.external.db must be 0 with mode Cluster: Redis Cluster only has database 0"
// +kubebuilder:validation:XValidation:rule="(!has(self.sentinelUsername) && !has(self.sentinelPasswordSecretRef)) || has(self.masterName)",message="spec.redis.external.sentinelUsername and sentinelPasswordSecretRef are for Sentinels: set masterName, or remove them"
type ExternalRedisSpec struct {
	// Addresses of the Redis nodes as host:port: one node, several Cluster nodes, or the
	// Sentinels when masterName is set.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	Addresses []RedisAddress `json:"addresses"`

	// MasterName is the Sentinel master name; set it when addresses are Sentinels.
	// +kubebuilder:validation:MaxLength=128
	// +optional
	MasterName string `json:"masterName,omitempty"`

	// Username for Redis ACLs.
	// +kubebuilder:validation:MaxLength=128
	// +optional
	Username string `json:"username,omitempty"`

	// PasswordSecretRef names the key of a Secret in the AuthService's namespace that holds the
	// password. The auth-server pods mount it and send it to the addresses above: whoever may
	// create an AuthService may so use any Secret of the namespace (docs/operator.md, trust
	// model), unless the operator runs with --require-secret-use-label.
	// +optional
	PasswordSecretRef *SecretKeyReference `json:"passwordSecretRef,omitempty"`

	// DB is the database number (single node and Sentinel only).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=15
	// +kubebuilder:default=0
	// +optional
	DB int32 `json:"db,omitempty"`

	// TLS configures TLS to Redis.
	// +optional
	TLS *RedisTLSSpec `json:"tls,omitempty"`

	// Mode is how the auth server talks to the addresses: Auto infers it (masterName set:
	// Sentinel; several addresses: Cluster; one address: asks the node whether it is a
	// Cluster), or name it: Standalone, Sentinel or Cluster.
	// +kubebuilder:default=Auto
	// +optional
	Mode RedisMode `json:"mode,omitempty"`

	// SentinelUsername is the user the auth server authenticates as to the Sentinels (their
	// own ACL, not the Redis one).
	// +kubebuilder:validation:MaxLength=128
	// +optional
	SentinelUsername string `json:"sentinelUsername,omitempty"`

	// SentinelPasswordSecretRef names the key of a Secret in the AuthService's namespace that
	// holds the Sentinels' own password (requirepass of the Sentinels). The same trust model
	// as passwordSecretRef applies.
	// +optional
	SentinelPasswordSecretRef *SecretKeyReference `json:"sentinelPasswordSecretRef,omitempty"`
}

// RedisMode is how the auth server connects to an external Redis.
// +kubebuilder:validation:Enum=Auto;Standalone;Sentinel;Cluster
type RedisMode string

// The values of RedisMode.
const (
	RedisModeAuto       RedisMode = "Auto"
	RedisModeStandalone RedisMode = "Standalone"
	RedisModeSentinel   RedisMode = "Sentinel"
	RedisModeCluster    RedisMode = "Cluster"
)

// RedisTLSSpec configures TLS between the auth server and an external Redis.
type RedisTLSSpec struct {
	// Enabled connects with TLS.
	// +optional
	Enabled bool `json:"enabled,omitempty"`

	// CASecretRef names the key of a Secret holding the PEM CA bundle of the Redis server's
	// certificate; empty uses the system roots. A change to the Secret rolls the auth servers,
	// which read the bundle at start.
	// +optional
	CASecretRef *SecretKeyReference `json:"caSecretRef,omitempty"`

	// ServerName to verify, when it differs from the address.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	ServerName string `json:"serverName,omitempty"`
}

// SecretKeyReference names one key of a Secret in the AuthService's namespace.
type SecretKeyReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Key in the Secret's data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// AuthServiceStatus is what the operator observed and did.
type AuthServiceStatus struct {
	// Conditions: Ready, KeysReady, RedisReady, ServerReady, IssuerReady, TLSReady and
	// BlacklistIntact.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ObservedGeneration is the generation of the spec that the last successful pass applied.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// ActiveKeyID is the kid of the key that signs.
	// +optional
	ActiveKeyID string `json:"activeKeyID,omitempty"`

	// NextKeyID is the kid of the published key that signs after the next rotation.
	// +optional
	NextKeyID string `json:"nextKeyID,omitempty"`

	// LastRotationTime is when the active key started signing.
	// +optional
	LastRotationTime *metav1.Time `json:"lastRotationTime,omitempty"`

	// NextRotationTime is when the next key is due to take over.
	// +optional
	NextRotationTime *metav1.Time `json:"nextRotationTime,omitempty"`

	// Keys is the public metadata of every key in the signing-key Secret: the published ones,
	// and retired keys past expiresAt that the issuer keeps for refresh tokens only.
	// +listType=map
	// +listMapKey=kid
	// +optional
	Keys []PublishedKey `json:"keys,omitempty"`

	// LastRotationRequest is the last value of the auth.hiringo.tech/rotate annotation that
	// the operator acted on.
	// +optional
	LastRotationRequest string `json:"lastRotationRequest,omitempty"`

	// ServerURL is the in-cluster URL of the verifier: logout, verify, JWKS and discovery.
	// +optional
	ServerURL string `json:"serverURL,omitempty"`

	// IssuerURL is the in-cluster URL of the issuer: token issuance and refresh.
	// +optional
	IssuerURL string `json:"issuerURL,omitempty"`

	// Issuer is the iss claim of the tokens issued: spec.tokens.issuer, or serverURL.
	// +optional
	Issuer string `json:"issuer,omitempty"`

	// TLS is the serving certificate in use, when spec.server.tls is set: what consumers of
	// the https issuer (the Kubernetes API server, go-oidc, gateways) need to trust it.
	// +optional
	TLS *TLSStatus `json:"tls,omitempty"`

	// RedisKeyPrefix is the Redis key prefix the auth servers use: spec.redis.keyPrefix, or the
	// one derived from the AuthService's identity, recorded once so that it never changes
	// under a running blacklist.
	// +optional
	RedisKeyPrefix string `json:"redisKeyPrefix,omitempty"`

	// CreatedObjects are the namespaced objects the operator created for this AuthService,
	// by UID: one of them found without the operator's labels or owner reference was
	// tampered with and is repaired, not refused as a stranger's.
	// +listType=map
	// +listMapKey=kind
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	// +optional
	CreatedObjects []CreatedObject `json:"createdObjects,omitempty"`
}

// CreatedObject names one object the operator created.
type CreatedObject struct {
	// Kind of the object, such as Secret.
	// +kubebuilder:validation:MaxLength=64
	Kind string `json:"kind"`
	// Name of the object, in the AuthService's namespace.
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// UID of the object the operator created.
	// +kubebuilder:validation:MaxLength=64
	UID string `json:"uid"`
}

// TLSStatus describes the serving certificate of the verifier and the issuer.
type TLSStatus struct {
	// SecretName is the kubernetes.io/tls Secret the certificate comes from.
	SecretName string `json:"secretName"`

	// CABundle is the PEM certificate of the CA consumers must trust: the Secret's ca.crt
	// or, without one, the topmost certificate of tls.crt when it is a CA or self-signed.
	// Empty when neither says: give consumers the CA that signed the certificate.
	// +optional
	CABundle string `json:"caBundle,omitempty"`

	// DNSNames are the names the certificate is valid for.
	// +listType=atomic
	// +optional
	DNSNames []string `json:"dnsNames,omitempty"`

	// NotAfter is when the certificate expires.
	// +optional
	NotAfter *metav1.Time `json:"notAfter,omitempty"`
}

// PublishedKey is the public metadata of one published signing key.
type PublishedKey struct {
	// KeyID is the key's kid.
	KeyID string `json:"kid"`

	// State is next, active or retired.
	// +kubebuilder:validation:Enum=next;active;retired
	State string `json:"state"`

	// CreatedAt is when the key was generated and published.
	CreatedAt metav1.Time `json:"createdAt"`

	// ActivatedAt is when the key started signing.
	// +optional
	ActivatedAt *metav1.Time `json:"activatedAt,omitempty"`

	// RetiredAt is when the key stopped signing.
	// +optional
	RetiredAt *metav1.Time `json:"retiredAt,omitempty"`

	// ExpiresAt is when the retired key leaves the JWKS and the verifier, once no access
	// token it signed can be valid.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// RefreshExpiresAt is when the retired key is deleted from the signing-key Secret, once
	// no refresh token it signed can be valid. Until then the issuer verifies refreshes with it.
	// +optional
	RefreshExpiresAt *metav1.Time `json:"refreshExpiresAt,omitempty"`
}
