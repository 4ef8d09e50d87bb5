// A real OpenID provider (node-oidc-provider, OpenID Certified) for the sign-in tests, on loopback.
// Configured from the environment: ISSUER (http://127.0.0.1:<port>), REDIRECT_URI, POST_LOGOUT_URI,
// KEY_ID (the signing key's kid: a new id is a rotated key), optionally SIGNING_JWK (the private key as a
// JWK, so a test can also sign tokens the provider would) and BACKCHANNEL_URI (where its back-channel
// logout tokens go). Accounts: whatever name is typed at its login page; "<name>@example.org" and the
// groups below are their claims.
import { generateKeyPairSync } from "node:crypto";
import Provider from "oidc-provider";

const issuer = process.env.ISSUER;
const port = Number(new URL(issuer).port);
const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const own = process.env.SIGNING_JWK ? JSON.parse(process.env.SIGNING_JWK) : privateKey.export({ format: "jwk" });
const jwk = { ...own, kid: process.env.KEY_ID || "key-1", use: "sig", alg: "ES256" };
const backchannel = process.env.BACKCHANNEL_URI
  ? { backchannel_logout_uri: process.env.BACKCHANNEL_URI, backchannel_logout_session_required: true }
  : {};
const GROUPS = { olivia: ["sotto-admins"], oscar: ["radio"], nobody: [] };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: "sotto",
      client_secret: "sotto-client-secret",
      redirect_uris: [process.env.REDIRECT_URI],
      post_logout_redirect_uris: [process.env.POST_LOGOUT_URI],
      token_endpoint_auth_method: "client_secret_basic",
      id_token_signed_response_alg: "ES256",
      ...backchannel,
    },
    {
      client_id: "another-app",
      client_secret: "another-client-secret",
      redirect_uris: [process.env.REDIRECT_URI],
      token_endpoint_auth_method: "client_secret_basic",
      id_token_signed_response_alg: "ES256",
    },
  ],
  jwks: { keys: [jwk] },
  cookies: { keys: ["a test cookie key that signs nothing real"] },
  claims: { openid: ["sub"], email: ["email", "email_verified"], groups: ["groups"] },
  conformIdTokenClaims: false, // the groups and e-mail in the ID token itself
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true }, backchannelLogout: { enabled: true } },
  pkce: { required: () => true },
  // Its back-channel logout calls the appliance on loopback, which the provider's SSRF guard refuses.
  fetch: (url, options) => globalThis.fetch(url, { ...options, dispatcher: undefined }),
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: `${id}@example.org`, email_verified: true, groups: GROUPS[id] || ["radio"] };
      },
    };
  },
});
provider.on("backchannel.error", (ctx, err) => console.error(`back-channel logout failed: ${err.message}`));
provider.proxy = false;
provider.listen(port, "127.0.0.1", () => console.log(`listening ${issuer}`));
