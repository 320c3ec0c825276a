import { cloneElement, useId, type ReactElement } from "react";

export interface UserErrorLike { message: string; field?: readonly string[] | null; code?: string }

/** The first problem of a mutation result: a transport/GraphQL error or a userError. */
export function problemOf(error: { message: string } | undefined, userErrors: readonly UserErrorLike[] | undefined): string | null {
  if (error) return error.message;
  if (userErrors && userErrors.length) {
    return userErrors.map((e) => (e.field?.length ? `${e.field.join(".")}: ${e.message}` : e.message)).join("; ");
  }
  return null;
}

export function Problem({ text }: { text: string | null }) {
  return text ? <p role="alert" className="error">{text}</p> : null;
}

/** A labelled control: the label names the control alone (its hint describes it). */
export function Field({ label, children, hint }: { label: string; children: ReactElement; hint?: string }) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {cloneElement(children, { id, "aria-describedby": hint ? `${id}-hint` : undefined })}
      {hint && <small id={`${id}-hint`}>{hint}</small>}
    </div>
  );
}
