// Reads a JWT's `exp` claim without verifying it: the token is Exirom's to check;
// refundkit only needs to know when to fetch a new one.
export const expiresAt = (token: string): number | undefined => {
  const payload = token.split(".")[1]
  if (payload === undefined) return undefined
  try {
    const claims: unknown = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"))
    if (typeof claims === "object" && claims !== null && "exp" in claims && typeof claims.exp === "number" && Number.isFinite(claims.exp)) {
      return claims.exp * 1000
    }
    return undefined
  } catch {
    return undefined
  }
}
