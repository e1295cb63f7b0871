/** The plugin id, shared by every module that names the provider in an error. */
export const providerId = "airalo"

/** How much of a provider's own words an error detail keeps. */
export const maxDetailLength = 500

/** Shortens a provider's message for an error detail. */
export const clip = (text: string): string => (text.length <= maxDetailLength ? text : `${text.slice(0, maxDetailLength - 1)}…`)
