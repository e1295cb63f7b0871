/**
 * How `Refunds.update` writes an update into a refund's history, and how a plugin reads it
 * back: an accepted update as `update <request JSON>`, one whose answer never came as
 * `update <request JSON> may have been applied by <provider> (<why>); …`. A plugin that
 * compares a repeat with an earlier update (AeroHub) reads the request here, beside the
 * words that write it.
 *
 * @since 0.5.0
 */
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

const prefix = "update "
const inDoubtMarker = (provider: string): string => ` may have been applied by ${provider} (`

/**
 * The detail of an accepted update's event.
 *
 * @since 0.5.0
 */
export const acceptedDetail = (request: unknown): string => `${prefix}${JSON.stringify(request)}`

/**
 * The detail of an update the provider may have applied without its answer reaching us.
 *
 * @since 0.5.0
 */
export const inDoubtDetail = (request: unknown, provider: string, why: string): string =>
  `${prefix}${JSON.stringify(request)}${inDoubtMarker(provider)}${why}); the refund records no change: send the same update again to record its outcome`

const parse = Schema.decodeUnknownOption(Schema.parseJson())

/**
 * The request an update's event recorded, and whether its outcome is in doubt; none for
 * any other event. The in-doubt words can also occur inside the JSON's strings, but a cut
 * inside a string is never JSON, so the first cut that parses is the request.
 *
 * @since 0.5.0
 */
export const recordedUpdate = (
  detail: string | undefined,
  provider: string
): Option.Option<{ readonly request: unknown; readonly inDoubt: boolean }> => {
  if (detail === undefined || !detail.startsWith(prefix)) return Option.none()
  const text = detail.slice(prefix.length)
  const marker = inDoubtMarker(provider)
  for (let end = text.indexOf(marker); end !== -1; end = text.indexOf(marker, end + 1)) {
    const request = parse(text.slice(0, end))
    if (Option.isSome(request)) return Option.some({ request: request.value, inDoubt: true })
  }
  return Option.map(parse(text), (request) => ({ request, inDoubt: false }))
}
