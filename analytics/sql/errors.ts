// The one error the SQL engine throws. Every refusal names the piece of SQL it is about, so the
// admin API can answer 400 with something an operator can act on.

export class SqlError extends Error {
  override readonly name = "SqlError";
  /** The unsupported or malformed piece of SQL, e.g. "JOIN", "function toDate", "column blob21". */
  readonly construct: string;
  /** Offset in the query text where the construct starts (0-based, UTF-16 units). */
  readonly position: number;

  constructor(construct: string, message: string, position: number) {
    super(message);
    this.construct = construct;
    this.position = position;
  }
}
