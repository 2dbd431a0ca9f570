/** Headers a service passes on so routing by user and mesh debugging work across hops. */
export function propagated(headers: Headers, endUser?: string | null): Headers {
  const out = new Headers();
  for (const name of ["end-user", "x-edgemesh-debug", "x-request-id"]) {
    const value = headers.get(name);
    if (value !== null) out.set(name, value);
  }
  if (endUser) out.set("end-user", endUser);
  return out;
}
