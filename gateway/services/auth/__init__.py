"""Service authentication, one module per concern:

- `clients`: OAuth clients (create, list, rotate the secret, revoke) and the scope and
  purpose checks an authenticated client goes through.
- `keys`: the token-signing keys (the active key, rotation, the published JWKS) and the
  signing and verification any kind of token uses: `sign`, `signer`, `verification_key`,
  `verify`, `issuer`.
- `tokens`: the token endpoint (client-credentials grant, its failure throttle, metadata).
- `bearer`: bearer-token verification on every service endpoint (`at+jwt` only).
- `idp`: the organisation's own identity provider's JWKS, fetched and cached (`IdpKeys`).

Their rows are read and written through `store/auth.py`. Import the module you need
(`from gateway.services.auth import keys`); this package re-exports nothing.
"""
