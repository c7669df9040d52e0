// A mail sink built on nodemailer's smtp-server: accepts every message on all interfaces.
const { SMTPServer } = require("smtp-server");

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ["STARTTLS"],
  onData(stream, session, callback) {
    stream.on("end", callback);
    stream.resume();
  },
});
server.on("error", (err) => console.error("smtp error:", err.message));
server.listen(2525, "0.0.0.0", () => console.log("listening on 0.0.0.0:2525"));
