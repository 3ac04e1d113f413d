// A real OpenID provider (panva/oidc-provider, pinned in package-lock.json) for Tresor's
// JWT/OIDC auth tests. Not a fake: discovery, JWKS, tokens, PKCE and the auth-code flow are the
// library's own; this file only configures it.
//
//   node server.mjs PORT KEYFILE [KID] [REDIRECT_URIS]
//
// - PORT: listens on 127.0.0.1:PORT; the issuer is http://127.0.0.1:PORT.
// - KEYFILE: the RS256 signing key as a private JWK. Created (with kid KID, default "k1") when
//   missing, so tests rotate keys by restarting the provider with another key file.
// - REDIRECT_URIS: comma-separated redirect URIs of the browser client (loopback URIs match
//   any port, as for a native app).
//
// Clients:
// - ci-client / ci-secret: client_credentials; access tokens are JWTs (aud "tresor") with
//   Gitea-Actions-like claims repository, ref, workflow (token request parameters of the same
//   names, defaults org/app, refs/heads/main, deploy.yml) and sub "repo:<repository>:ref:<ref>".
//   Test-only request parameters shape the token through the provider's JWT customizer:
//   exp_offset / nbf_offset (seconds from now) and header_kid (the kid written in the header,
//   the signature still being the provider's key).
// - web-client / web-secret: authorization_code with PKCE required; devInteractions accept any
//   login; the ID token has sub = the login, email and groups ["ops", "dev"].
//
// Prints "listening <issuer>" once it accepts connections.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';

import Provider from 'oidc-provider';

const [port, keyFile, kid = 'k1', redirects = 'http://127.0.0.1/oidc/callback,http://localhost/oidc/callback'] = process.argv.slice(2);
if (!port || !keyFile) {
  console.error('usage: node server.mjs PORT KEYFILE [KID] [REDIRECT_URIS]');
  process.exit(2);
}

let jwk;
if (existsSync(keyFile)) {
  jwk = JSON.parse(readFileSync(keyFile, 'utf8'));
} else {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  jwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
  writeFileSync(keyFile, JSON.stringify(jwk), { mode: 0o600 });
}

const issuer = `http://127.0.0.1:${port}`;
const CI_CLAIMS = { repository: 'org/app', ref: 'refs/heads/main', workflow: 'deploy.yml' };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'ci-client',
      client_secret: 'ci-secret',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    },
    {
      client_id: 'web-client',
      client_secret: 'web-secret',
      application_type: 'native',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: redirects.split(',').filter(Boolean),
    },
  ],
  jwks: { keys: [jwk] },
  cookies: { keys: ['tresor-test-cookie-key'] },
  pkce: { required: () => true },
  conformIdTokenClaims: false,
  scopes: ['openid', 'email', 'groups', 'read'],
  claims: { openid: ['sub'], email: ['email'], groups: ['groups'] },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: `${id}@example.test`, groups: ['ops', 'dev'] };
      },
    };
  },
  extraParams: ['repository', 'ref', 'workflow', 'exp_offset', 'nbf_offset', 'header_kid'],
  async extraTokenClaims(ctx, token) {
    if (token.clientId !== 'ci-client') return undefined;
    const p = { ...(ctx.oidc.body || {}), ...(ctx.oidc.params || {}) };
    return {
      repository: p.repository || CI_CLAIMS.repository,
      ref: p.ref || CI_CLAIMS.ref,
      workflow: p.workflow || CI_CLAIMS.workflow,
    };
  },
  formats: {
    customizers: {
      async jwt(ctx, token, jwt) {
        const p = { ...(ctx.oidc.body || {}), ...(ctx.oidc.params || {}) };
        const now = Math.floor(Date.now() / 1000);
        if (jwt.payload.repository) {
          jwt.payload.sub = `repo:${jwt.payload.repository}:ref:${jwt.payload.ref}`;
        }
        if (p.exp_offset) jwt.payload.exp = now + Number(p.exp_offset);
        if (p.nbf_offset) jwt.payload.nbf = now + Number(p.nbf_offset);
        if (p.header_kid) jwt.header = { kid: p.header_kid };
      },
    },
  },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx, client) => (client?.clientId === 'ci-client' ? 'urn:tresor' : undefined),
      getResourceServerInfo: () => ({
        scope: 'read',
        audience: 'tresor',
        accessTokenTTL: 600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
});

const server = provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
