// Holds one inbox socket open for the presence scenario's unclean disconnect: the harness kills this
// process with SIGKILL, so the socket goes away without a close frame, as when a device dies.
// Usage: node inbox-holder.mjs <wsUrl> <token>
const [url, token] = process.argv.slice(2);
const ws = new WebSocket(url, ["edge-chat", `bearer.${token}`]);
ws.addEventListener("open", () => console.log("open"));
ws.addEventListener("error", () => {
  console.log("error");
  process.exit(1);
});
// Bounded: never outlive the harness by more than a minute.
setTimeout(() => process.exit(0), 60_000);
