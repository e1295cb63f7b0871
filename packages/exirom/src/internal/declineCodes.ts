// Exirom's decline-code reference (https://developers.exirom.com/docs/status-error-codes/decline-codes-reference-guide).
// Only codes 1-18 have names in the retrieved pages; the action groups come from the newer page.

export const names: Readonly<Record<number, string>> = {
  1: "UNEXPECTED_ERROR",
  2: "REJECTED_BY_ISSUER_BANK_ERROR",
  3: "THREE_DS_AUTHENTICATION_ERROR",
  4: "FORM_TIMEOUT_ERROR",
  5: "INSUFFICIENT_FUNDS_ERROR",
  6: "LIMITED_BY_ISSUER_BANK_ERROR",
  7: "ANTI_FRAUD_ERROR",
  8: "DATA_VALIDATION_ERROR",
  9: "PREPAY_TIMEOUT_ERROR",
  10: "THREE_DS_PAGE_ERROR",
  11: "PROCESSOR_DENIED",
  12: "GENERIC_PROCESSING_ERROR",
  13: "TECHNICAL_GATEWAY_ERROR",
  14: "DUPLICATED_ORDER_ID_ERROR",
  15: "CURRENCY_EXCHANGE_NOT_ALLOWED_ERROR",
  16: "GATE_NOT_FOUND_ERROR",
  17: "ORDER_BILLING_ERROR",
  18: "CARD_TIME_LIMIT_ERROR"
}

export type Action = "retry" | "fix_request" | "customer_action" | "contact_support"

type Ranges = ReadonlyArray<number | readonly [number, number]>

const groups: ReadonlyArray<readonly [Action, Ranges]> = [
  ["retry", [1, 9, 12, 13, 61, 63, 70, 72, 73, 702, 1010, 1023, 3001, 3021]],
  ["fix_request", [
    8, 14, 17, [24, 27], 30, 31, 65, 103, 105, [201, 205], 502, 908, 909, [1011, 1018], 3016, 3017, 3020, 3022,
    4002, 4005, 4022, 4023, 4028, 20954
  ]],
  ["customer_action", [
    [3, 6], 10, [19, 23], 33, 34, 100, 104, [300, 317], 500, 501, 700, [900, 907], [910, 915], [1001, 1006],
    [1019, 1022], 1024, 1025
  ]],
  ["contact_support", [
    7, 28, 29, 32, 62, 64, [66, 69], 78, 101, 102, [400, 404], [600, 603], 701, 800, 801, 1000, 1007, 1008,
    [3008, 3012], 3014, 3015, 4001, [4009, 4012], 4015, 4016, 4024, 4025, 4032, 7777, 19991
  ]]
]

const actions = new Map<number, Action>()
for (const [action, ranges] of groups) {
  for (const range of ranges) {
    const [from, to] = typeof range === "number" ? [range, range] : range
    for (let code = from; code <= to; code++) actions.set(code, action)
  }
}

export const actionOf = (code: number): Action | undefined => actions.get(code)
