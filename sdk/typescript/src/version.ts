/** This package's version (sent in the User-Agent, so the platform knows its workers' SDK). */
export const VERSION = "0.1.0";
