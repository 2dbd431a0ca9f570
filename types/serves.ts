// `Serves<Deployed, Code>` is `true` when an env of type `Deployed` (what `wrangler types` says a
// generated config gives) has every binding and variable `Code` (the env a part of the code
// declares) requires, each of a type the code accepts; otherwise it names what is missing or of
// the wrong type, so `const x: Serves<A, B> = true` fails to compile with the names in the error.
// A Durable Object namespace may also be taken untyped, as most of the code binds it.

type RequiredKeys<T> = { [K in keyof T]-?: {} extends Pick<T, K> ? never : K }[keyof T];
type Untyped<V> = V extends DurableObjectNamespace<any> ? DurableObjectNamespace : V;

type Missing<Deployed, Code> = Exclude<RequiredKeys<Code>, keyof Deployed>;
type Mismatched<Deployed, Code> = {
  [K in keyof Code & keyof Deployed]: Deployed[K] extends Exclude<Code[K], undefined> ? never : Untyped<Deployed[K]> extends Exclude<Code[K], undefined> ? never : K;
}[keyof Code & keyof Deployed];

export type Serves<Deployed, Code> =
  [Missing<Deployed, Code>, Mismatched<Deployed, Code>] extends [never, never]
    ? true
    : { missing: Missing<Deployed, Code>; mismatched: Mismatched<Deployed, Code> };
