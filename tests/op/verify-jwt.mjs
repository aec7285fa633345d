// Verifies a profilegate X-Profile-Jwt the way an upstream app would, with the `jose` library:
//   node tests/op/verify-jwt.mjs <jwks-url> <issuer> <audience> <token>
// Prints the verified payload as JSON on stdout, or the reason on stderr with exit code 1.
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [jwksUrl, issuer, audience, token] = process.argv.slice(2);
try {
  const jwks = createRemoteJWKSet(new URL(jwksUrl));
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    issuer,
    audience,
    algorithms: ['ES256'],
  });
  process.stdout.write(JSON.stringify({ header: protectedHeader, payload }) + '\n');
} catch (e) {
  process.stderr.write(`verification failed: ${e.code || ''} ${e.message}\n`);
  process.exit(1);
}
