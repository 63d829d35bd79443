/**
 * Builders of realistic dispatch payloads (fact sheet §6). Every field can be overridden;
 * ids default to fresh values shaped like the platform's.
 */
import { randomBytes, randomInt } from 'node:crypto';

/** An attachment as found in message events. */
export interface Attachment {
  content_type: string;
  filename?: string;
  height?: number;
  width?: number;
  size?: number;
  /** May lack a scheme, as on the platform. */
  url: string;
}

/** Fields shared by every message builder. */
export interface MessageInput {
  content: string;
  /** Message id; default a fresh `ROBOT1.0_...`-style id. */
  id?: string;
  /** RFC 3339; default now in +08:00. */
  timestamp?: string;
  attachments?: Attachment[];
}

/** `d` of C2C_MESSAGE_CREATE. */
export interface C2CMessage {
  id: string;
  author: { id: string; user_openid: string; union_openid?: string };
  content: string;
  timestamp: string;
  attachments?: Attachment[];
  message_scene: { source: string };
}

/** `d` of GROUP_AT_MESSAGE_CREATE. */
export interface GroupAtMessage {
  id: string;
  group_openid: string;
  group_id: string;
  author: { id: string; member_openid: string; union_openid?: string };
  content: string;
  timestamp: string;
  attachments?: Attachment[];
}

/** `d` of AT_MESSAGE_CREATE, MESSAGE_CREATE and DIRECT_MESSAGE_CREATE (a Message object). */
export interface GuildMessage {
  id: string;
  channel_id: string;
  guild_id: string;
  content: string;
  timestamp: string;
  author: { id: string; username: string; avatar: string; bot: boolean };
  member: { nick?: string; roles: string[]; joined_at: string };
  mentions?: { id: string; username: string; bot: boolean }[];
  attachments?: Attachment[];
  seq_in_channel: string;
  direct_message?: boolean;
  src_guild_id?: string;
}

/** An openid: 32 upper-case hex chars. */
export function openid(): string {
  return randomBytes(16).toString('hex').toUpperCase();
}

/** A guild/channel/user id: a decimal snowflake-like string. */
export function snowflake(): string {
  return String(BigInt(Date.now()) * 1_000_000n + BigInt(randomInt(1_000_000)));
}

/** A message id shaped like the platform's `ROBOT1.0_...`. */
export function messageId(): string {
  return `ROBOT1.0_${randomBytes(18).toString('base64url')}`;
}

/** `date` as RFC 3339 in China Standard Time, e.g. `2023-11-06T13:37:18+08:00`. */
export function rfc3339(date = new Date()): string {
  const shifted = new Date(date.getTime() + 8 * 3600_000);
  return `${shifted.toISOString().slice(0, 19)}+08:00`;
}

/** A C2C (private chat) message. */
export function c2cMessage(input: MessageInput & { userOpenid?: string }): C2CMessage {
  const user = input.userOpenid ?? openid();
  return {
    id: input.id ?? messageId(),
    author: { id: user, user_openid: user },
    content: input.content,
    timestamp: input.timestamp ?? rfc3339(),
    ...(input.attachments && { attachments: input.attachments }),
    message_scene: { source: 'default' },
  };
}

/** A group message that @-mentions the bot; `content` gets the leading space the platform adds. */
export function groupAtMessage(
  input: MessageInput & { groupOpenid?: string; memberOpenid?: string },
): GroupAtMessage {
  const group = input.groupOpenid ?? openid();
  const member = input.memberOpenid ?? openid();
  return {
    id: input.id ?? messageId(),
    group_openid: group,
    group_id: group,
    author: { id: member, member_openid: member },
    content: ` ${input.content}`,
    timestamp: input.timestamp ?? rfc3339(),
    ...(input.attachments && { attachments: input.attachments }),
  };
}

/** Guild-message specific inputs. */
export interface GuildMessageInput extends MessageInput {
  channelId?: string;
  guildId?: string;
  authorId?: string;
  username?: string;
}

/** A guild channel message (AT_MESSAGE_CREATE or MESSAGE_CREATE). */
export function guildMessage(input: GuildMessageInput): GuildMessage {
  return {
    id: input.id ?? snowflake(),
    channel_id: input.channelId ?? snowflake(),
    guild_id: input.guildId ?? snowflake(),
    content: input.content,
    timestamp: input.timestamp ?? rfc3339(),
    author: {
      id: input.authorId ?? snowflake(),
      username: input.username ?? 'fake-user',
      avatar: 'https://thirdqq.qlogo.cn/0',
      bot: false,
    },
    member: { roles: ['1'], joined_at: rfc3339(new Date(Date.now() - 86_400_000)) },
    ...(input.attachments && { attachments: input.attachments }),
    seq_in_channel: String(randomInt(1, 1_000_000)),
  };
}

/**
 * An @-mention of the bot in a guild channel: `content` starts with `<@!botId>` as on the
 * platform.
 */
export function atMessage(
  input: GuildMessageInput & { bot: { id: string; username: string } },
): GuildMessage {
  return {
    ...guildMessage({ ...input, content: `<@!${input.bot.id}> ${input.content}` }),
    mentions: [{ id: input.bot.id, username: input.bot.username, bot: true }],
  };
}

/** A guild direct message: `guild_id` is the DM session's guild (reply via `/dms/{guild_id}`). */
export function directMessage(input: GuildMessageInput & { srcGuildId?: string }): GuildMessage {
  return {
    ...guildMessage(input),
    direct_message: true,
    src_guild_id: input.srcGuildId ?? snowflake(),
  };
}
