#!/usr/bin/env bash
# The README's five-minute walk-through: register an OAuth2 client for an organisation, sign a
# JWT-bearer assertion with its key, get an access token, exchange it for a platform token and
# call a protected route. Needs bash, curl and openssl; talks to a running broker.
#
#   BROKER_URL          gateway base URL            (default http://127.0.0.1:8080)
#   BROKER_ADMIN_TOKEN  admin credential            (default: read from $BROKER_DATA_DIR/admin-token)
#   BROKER_DATA_DIR     the broker's data directory (default ./data)
#   ORG                 organisation number         (default 991825827)
#   SCOPES              scopes to register and ask  (default "altinn:broker.write altinn:broker.read")
#   WORK_DIR            where the key is written    (default a new temporary directory)
set -euo pipefail

base=${BROKER_URL:-http://127.0.0.1:8080}
base=${base%/}
admin=${BROKER_ADMIN_TOKEN:-$(cat "${BROKER_DATA_DIR:-./data}/admin-token")}
org=${ORG:-991825827}
scopes=${SCOPES:-altinn:broker.write altinn:broker.read}
work=${WORK_DIR:-$(mktemp -d)}
client_id="walkthrough-$(date +%s)-$RANDOM"
kid="key-1"

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
json_field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

echo "1. Make an RSA key pair for the client ($work/client.pem)"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/client.pem" 2>/dev/null
modulus=$(openssl rsa -in "$work/client.pem" -noout -modulus | cut -d= -f2)
n=$(printf '%b' "$(sed 's/../\\x&/g' <<<"$modulus")" | b64url)

echo "2. Register client $client_id for organisation $org with scopes: $scopes"
scope_list=$(sed 's/ /","/g' <<<"$scopes")
curl -sSf -X POST "$base/admin/v1/clients" \
  -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
  -d "{\"clientId\":\"$client_id\",\"orgNumber\":\"$org\",\"scopes\":[\"$scope_list\"],
       \"jwks\":{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"$kid\",\"alg\":\"RS256\",\"use\":\"sig\",\"n\":\"$n\",\"e\":\"AQAB\"}]}}" \
  >/dev/null

echo "3. Sign a JWT-bearer assertion (aud = the issuer, valid 60 s, single-use jti)"
issuer=$(curl -sSf "$base/.well-known/oauth-authorization-server" | json_field issuer)
now=$(date +%s)
header=$(printf '{"alg":"RS256","kid":"%s"}' "$kid" | b64url)
claims=$(printf '{"aud":"%s","iss":"%s","scope":"%s","iat":%d,"exp":%d,"jti":"%s"}' \
  "$issuer" "$client_id" "$scopes" "$now" "$((now + 60))" "$(openssl rand -hex 16)" | b64url)
signature=$(printf '%s.%s' "$header" "$claims" | openssl dgst -sha256 -sign "$work/client.pem" | b64url)

echo "4. Get an access token"
access_token=$(curl -sSf -X POST "$base/token" \
  --data-urlencode 'grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer' \
  --data-urlencode "assertion=$header.$claims.$signature" | json_field access_token)
echo "   access token: ${access_token:0:32}…"

echo "5. Exchange it for a platform token"
platform_token=$(curl -sSf "$base/authentication/api/v1/exchange/maskinporten" \
  -H "Authorization: Bearer $access_token")
echo "   platform token: ${platform_token:0:32}…"

echo "6. Call a protected route with each"
curl -sSf "$base/api/v1/whoami" -H "Authorization: Bearer $access_token"
echo
curl -sSf "$base/api/v1/whoami" -H "Authorization: Bearer $platform_token"
echo
