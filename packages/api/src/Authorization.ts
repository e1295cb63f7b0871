/**
 * The API key check on `/v1` (all but webhooks): `Authorization: Bearer <key>`.
 * The contract declares it; the gateway implements it.
 *
 * @since 0.1.0
 */
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as OpenApi from "@effect/platform/OpenApi"
import { Unauthorized, Wire } from "./ApiError.js"

/**
 * The bearer scheme as OpenAPI shows it.
 *
 * @since 0.1.0
 */
export const bearer = HttpApiSecurity.bearer.pipe(
  HttpApiSecurity.annotate(OpenApi.Description, "An API key from REFUNDKIT_API_KEYS (or the sandbox key printed at start)")
)

/**
 * @since 0.1.0
 */
export class Authorization extends HttpApiMiddleware.Tag<Authorization>()("@refundkit/api/Authorization", {
  failure: Wire.Unauthorized,
  security: { bearer }
}) {}

/**
 * The failure the middleware answers with.
 *
 * @since 0.1.0
 */
export { Unauthorized }
