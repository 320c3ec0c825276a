export function Admin({ tab }: { token: string; tab: string }) {
  return <main><h2>Admin: {tab}</h2></main>;
}
