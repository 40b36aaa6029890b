/* synth_templates.c — the text of the synthetic corpus: six email styles
 * (each its own source), written for phishlens, and the word lists their
 * slots draw from. See synth_templates.h for the template syntax and
 * docs/corpus.md for the design (label cue vs planted shortcut).
 *
 * Every style has both labels. What makes an email phishing is the cue
 * sentence alone: a request for credentials, payment or personal data
 * through a lookalike link ({purl}) or reply address ({paddr}). The legitimate
 * counterpart is an ordinary action sentence with the organization's real
 * link ({url}) or none.
 */
#include "synth_templates.h"

#include <stddef.h>

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

/* The styles, in source order. (One initializer rather than named objects
 * copied into the array: clang, which builds the fuzzers, wants constants.) */
const synth_style synth_styles[] = {
/* ---- corporate internal (IT, HR, facilities) ---- */
{ /* corporate */
    "corporate", "internal mail from IT, HR or facilities at an employer", "company",
    L("[Reminder|Update|Action needed]: {itemcorp}", "{itemcorp} [this week|on {weekday}|before {date}]",
      "[Quick note|FYI] about {itemcorp}", "{team} [update|announcement]: {itemcorp}", "Re: {itemcorp}",
      "[Changes to|Notice about] {itemcorp}"),
    L("Hi {first},", "Hello {first},", "Dear {first},", "Hi all,", "Hello team,", "Dear colleagues,", "{first},"),
    L("As [announced|mentioned] [last week|at the all-hands|in the newsletter], the {team} team is rolling out {itemcorp} [on {date}|next {weekday}|this month].",
      "[This affects|This applies to] everyone in the {city} office[ and remote staff|| as well as contractors].",
      "[We expect|There will be] [a short|a brief|about {num} minutes of] downtime [between {time} and {time2}|on {weekday} evening|after {time}].",
      "If you [have questions|run into problems|need help], [contact|reach out to|write to] {sfirst} in {team}[ at extension {ext}|].",
      "[Thanks|Thank you] to everyone who [joined|attended|sent feedback on] the [pilot|planning session|survey] last {weekday}.",
      "The [change|update|migration] is part of [our move to|the project to standardize on|the rollout of] {system}.",
      "[Please|Kindly] [make sure|check] your [laptop|workstation|phone] is [connected to the network|plugged in|updated] before {time}.",
      "[Meeting rooms|Desks|Parking spaces] on floor {num} will [be unavailable|move|be reassigned] [during the work|until {date}|for a week].",
      "[Your manager|Your team lead|{sfirst}] [has the details|will follow up|can answer questions] about [timing|the schedule|priorities].",
      "[We know this is short notice|Apologies for the short notice|Thanks for your patience] and [appreciate your help|will keep it brief]."),
    L("[Your|Our records show your] [mailbox|email account|network password] [has reached|exceeds] [its quota|the storage limit|the expiry date]; [validate|re-activate|confirm] your account [within {hours} hours|today|immediately] at {purl} or it will be [disabled|deleted|locked].",
      "[To keep your access|To avoid losing access|To stay on the payroll system], [sign in|log in] with your [email password|network credentials|employee ID and password] at {purl} [before {time}|by end of day|within {hours} hours].",
      "[Please|Kindly] [review and sign|open] the [attached|shared] [salary adjustment|bonus letter|HR document] at {purl} using your [Office 365|company|email] [login|password].",
      "[Reply to|Send to] {paddr} with your [username and password|login details|employee number and password] [so IT can migrate your mailbox|to confirm your account|to keep your mailbox active]."),
    L("The [updated|new] [schedule|guide|FAQ] is on the intranet at {url}[ as usual|].",
      "[You do not need to do anything|No action is needed on your side|Nothing changes for your daily work]; [IT|we] will [handle the rest|take care of it].",
      "[Please|Kindly] [book|choose] a [slot|time] for the [training|walkthrough|session] at {url}[ if you have not yet|].",
      "[Details|The full plan|Notes from the meeting] [are|is] [posted|available] at {url} for anyone who [missed it|wants to read more]."),
    L("Thanks,", "Thank you,", "Best,", "Regards,", "Best regards,", "Cheers,", "Many thanks,"),
    L("{sfirst} {slast}\n{team}, {company}", "{sfirst}\n{team} team", "{sfirst} {slast}\n{title}\n{company} | {city}",
      "The {team} Team\n{company}")},

/* ---- bank / security notice ---- */
{ /* bank */
    "bank", "account and security notices from a bank", "bank",
    L("[Important|Security] notice about your {bank} account", "Your {bank} [statement|account update] for {month}",
      "[Activity|A sign-in] on your {bank} account", "{bank}: [account notice|message from customer service]",
      "[Changes to|Update on] your {bank} [card|account terms|online banking]", "Your {bank} card ending in {acct}"),
    L("Dear {first} {last},", "Dear customer,", "Dear {first},", "Hello {first},", "Dear valued customer,"),
    L("We are writing about your [checking|savings|credit card] account ending in {acct}.",
      "On {date} at {time} we [noticed|recorded] a [sign-in|payment of {amount}|transfer of {amount}] [from {city}|from a new device|to {shop}].",
      "[As part of our|Under our] [regular|annual] [security review|account review|compliance checks], we [review|check] [accounts|account details] [from time to time|every year].",
      "Your [current balance|available credit] is {amount} [as of|on] {date}.",
      "[From {date}|Starting next month], [the monthly fee|the overdraft limit|the interest rate] on your account [changes|will be updated] [as described in our terms|in line with our new terms].",
      "[For your security|To protect you], we [never|will never] ask for your PIN [by phone|over the phone|in a text message].",
      "[If this was you|If you made this payment], [you can ignore this message|no further action is needed].",
      "[Our branches|Our customer service team] [are|is] [open|available] [from {time} to {time2}|on weekdays|every day] [at {phone}|if you need us]."),
    L("[Your account has been|We have] [temporarily suspended|limited|restricted] [your account|access to your account]; [verify your identity|confirm your details|restore access] at {purl} within {hours} hours [or it will be closed|to avoid permanent suspension|to avoid extra fees].",
      "[To unlock|To reactivate|To secure] your account, [enter|confirm] your [card number, expiry date and PIN|online banking password and security answers|full card details] at {purl}[ today| now|].",
      "[Reply to|Send an email to] {paddr} with your [account number and PIN|card number and CVV|login and password] [to cancel the transaction|so we can refund you|to confirm it was you].",
      "[Download|Open] the [secure message|statement] at {purl} and [log in|sign in] with your [card PIN|banking password] to [read it|view the details|stop the payment]."),
    L("You can [view|download] your [statement|account details] [any time|when convenient] by signing in at {url}.",
      "[If you did not make this payment|If you do not recognise this], [call us on the number on the back of your card|call {phone}|visit any branch].",
      "The [new terms|full details] are [available|published] at {url}[ and in your online banking|].",
      "[No action is needed|You do not need to do anything] [at this time|right now]; [this message is for your information|we will send a reminder]."),
    L("Sincerely,", "Kind regards,", "Regards,", "Thank you for banking with us,", "Yours faithfully,"),
    L("{bank} Customer Service", "{sfirst} {slast}\n{bank} Security Team", "{bank} Online Banking",
      "Customer Care\n{bank}")},

/* ---- parcel delivery ---- */
{ /* parcel */
    "parcel", "delivery notifications from couriers and shops", "courier",
    L("Your {courier} [parcel|package|delivery] {order}", "[Delivery|Shipping] update for order {order}",
      "{courier}: [we tried to deliver your parcel|your parcel is on its way|delivery scheduled]",
      "[Your order|Order {order}] [has shipped|is out for delivery|is waiting for you]", "{courier} [delivery notice|tracking update]"),
    L("Hello {first},", "Hi {first},", "Dear {first} {last},", "Dear customer,", "Hello,"),
    L("Your [parcel|package|order] {order} [from {shop}|with your {product}|containing {product}] [was dispatched|left our depot|arrived in {city}] on {date}.",
      "[Our driver|The courier] [visited|came by|tried to deliver] on {weekday} at {time} but [nobody was home|could not get access|there was no safe place].",
      "The [package|parcel] weighs {weight} kg and [needs a signature|fits in a letterbox|will be left with a neighbour if you are out].",
      "[Estimated delivery|Expected arrival] is [{weekday} {date}|between {time} and {time2}|within {num} working days].",
      "[We will keep your parcel|Your parcel is held at the {city} depot|Your parcel waits at a pickup point] for {num} days.",
      "[Thank you for|Thanks for] [shopping with {shop}|your order|choosing {courier}].",
      "[Items|Orders] [over {amount}|sent from abroad] [may need|can require] [a signature|ID at the door]."),
    L("[A customs fee|An unpaid shipping fee|A redelivery charge] of {amount} [is outstanding|must be paid]; pay [now|within {hours} hours] at {purl} or the parcel [will be returned|is destroyed].",
      "[To reschedule|To confirm your address|To release the parcel], [enter|confirm] your [card details|address and card number|date of birth and card details] at {purl}[ today|].",
      "[Reply to|Email] {paddr} with your [full name, address and card number|bank details|date of birth and phone number] to [arrange redelivery|pay the {amount} fee|release your parcel]."),
    L("You can [track|follow] your [parcel|order] at {url}[ with the number {order}|].",
      "[Choose|Pick] a new [delivery day|time slot|pickup point] at {url}[ at no extra cost| free of charge|].",
      "[No further action is needed|You do not need to do anything]; [we will try again|the driver will return] [tomorrow|on {weekday}]."),
    L("Thank you,", "Kind regards,", "Best regards,", "Thanks,", "Happy shopping,"),
    L("{courier} Customer Service", "The {courier} Team", "{shop} Orders\nin partnership with {courier}", "{courier} Delivery")},

/* ---- newsletter ---- */
{ /* newsletter */
    "newsletter", "subscription newsletters and publisher mail", "pub",
    L("{pub}: [this week in|the latest on|your weekly] {topic}", "[Your|The] {month} {pub} [digest|roundup|newsletter]",
      "{pub} [weekly|daily]: {topic} [and more|edition]", "[New|Top] [stories|reads] on {topic} from {pub}",
      "Your {pub} subscription"),
    L("Hi {first},", "Hello reader,", "Dear subscriber,", "Hi there,", "Hello {first},", "Welcome back,"),
    L("[This week|In this issue] we look at {topic}[ and what it means for you| in {city}| with {num} new stories].",
      "[Our|The] [feature|lead story|cover story] [asks|explores|explains] [why|how] {topic} [changed|is changing] [this year|since {month}].",
      "[Readers|Subscribers] [sent|shared] {num} [questions|letters|comments] about [last week's|our recent] [piece|issue]; [we answer a few below|here are the best].",
      "[Also in this issue|Plus]: [an interview with|a guest column by] {sfirst} {slast}[, our {title}| on {topic}].",
      "[Don't miss|Join us for] our [live|online] [event|Q&A|webinar] on {weekday} at {time}.",
      "[Thanks for reading|Thank you for being a subscriber] [since {year}|for {num} years|this year].",
      "[Your subscription|Your plan] [renews|runs] [on {date}|until {date}|every {month}]."),
    L("[Your payment failed|We could not process your payment|Your card was declined]; [update your billing details|re-enter your card] at {purl} within {hours} hours [or your subscription ends|to keep your access].",
      "[Claim|Collect] your [free|exclusive] [gift card of {amount}|reward] [now|today] at {purl} by [signing in with your email password|entering your card details].",
      "[Confirm|Verify] your [subscription|account] at {purl} with your [email and password|card number] [to avoid being charged {amount}|to stop the renewal]."),
    L("[Read|Find] the [full issue|full story|archive] at {url}[ any time|].",
      "[Manage your preferences|Change how often you hear from us] at {url}.",
      "[Reply to this email|Write to us] [with your thoughts|if you have a story idea]; we read [every|each] [message|letter]."),
    L("Happy reading,", "Until next week,", "Thanks for reading,", "See you next time,", "All the best,"),
    L("The {pub} team", "{sfirst} {slast}\nEditor, {pub}", "{pub} editors", "{sfirst}, for {pub}")},

/* ---- personal ---- */
{ /* personal */
    "personal", "informal mail between friends, family and acquaintances", "nobrand",
    L("[hey|hi|hello]", "[quick|small] [question|favour]", "[photos|pictures] from {weekday}", "[plans|dinner] on {weekday}?",
      "re: [the trip|{city}|last weekend]", "[long time|catching up]", "[news|update] from {city}"),
    L("Hey {first},", "Hi {first}!", "{first},", "Hello {first},", "Hi,"),
    L("[Hope you are well|Hope all is good|Hope the week is going ok]! [It has been ages|Long time no see|Sorry for the slow reply].",
      "[We just got back|I just got back|We got back] from {city} [and it was great|and I'm still tired|last {weekday}].",
      "[The kids|Mum|My sister|Everyone] [says hi|asked about you|keeps talking about {weekday}].",
      "[Are you free|Would you be around|Could we meet] [on {weekday}|next week|after {time}] for [coffee|dinner|a walk]?",
      "I [finally|just] [started|finished] [the new job|the course|the renovation] [and it's going well|and it was a lot|last month].",
      "[The weather here|Work] has been [crazy|awful|lovely] [lately|this week]."),
    L("[I'm stuck|I got stranded|I am travelling] in {city} and [lost my wallet|my card was blocked]; [could you|can you please] [send|wire] {amount} [in gift cards|through {purl}|by bank transfer to the account at {purl}] [today|right away]?",
      "I shared a [document|few photos|file] with you at {purl}, [you just need to|just] [sign in with your email password|log in with your email address and password] to [open|see] it.",
      "[Can you|Could you] [send me|reply to {paddr} with] your [bank login|card number|account details] [so I can pay you back|for the transfer]? [It's urgent|I need it today]."),
    L("I put the [photos|pictures] [up|online] at {url}[ if you want to see them|].",
      "[Let me know|Tell me] [what works for you|if {weekday} is ok|when you are free].",
      "[Call me|Ring me] [whenever|tonight|on {weekday}] [if that's easier|, my number is the same]."),
    L("Cheers,", "Love,", "Talk soon,", "xx", "Take care,", "See you,"),
    L("{sfirst}", "{sfirst}\nsent from my phone", "{sfirst} x", "- {sfirst}")},

/* ---- formal letters: inheritance, legal, grants (the advance-fee style) ---- */
{ /* advance_fee */
    "advancefee", "formal letters about estates, claims, grants and awards", "firm",
    L("[Re:|Regarding] [the estate of|funds of] the late {efirst} {slast}", "[Notice of|Your] [award|grant|claim] {ref}",
      "[Confidential|Private] [matter|letter] from {firm}", "[Unclaimed|Pending] [funds|inheritance] {ref}",
      "[Your application|Your file] {ref}"),
    L("Dear {first} {last},", "Dear Sir or Madam,", "Dear friend,", "Dear {first},", "Attention: {first} {last},"),
    L("I am {sfirst} {slast}, a {title} with {firm} in {city}[, writing to you|, and I write] [on behalf of|for] [the estate of the late {efirst} {slast}|our client|the board].",
      "[Our records show|We have established] that you [are named|may be named|were listed] [as a beneficiary|as the contact|in file {ref}] [with a value of|for an amount of] {amount2}.",
      "[The matter|This file] has been [open|pending] since {year} and [must be closed|should be settled] [before {date}|this year|within {num} weeks].",
      "[Please|Kindly] [treat this letter as|regard this as] [confidential|private] until [the process is complete|we speak].",
      "[I have|We have] [handled|managed] [cases like this|estates of this kind] for over {num} years.",
      "[The committee|The trustees|Our office] [met|decided] on {date} [to release|to review] the [funds|award|file]."),
    L("[To release the funds|To process the transfer|Before the transfer], [send|pay] a [processing|legal|clearance] fee of {amount} [and your bank details|with your full banking information] to {paddr}[ within {hours} hours|].",
      "[Reply to|Contact] {paddr} with your [full name, bank account number and a copy of your passport|bank name, account number and phone] so [the {amount2} can be transferred|we can wire your share] [immediately|today].",
      "[Complete|Fill in] the [claim|release] form at {purl} with your [bank login|account and routing numbers|passport number] and pay the {amount} [release|handling] fee."),
    L("[You may|Please] [confirm|check] our [registration|firm] at {url}[ before replying|].",
      "[No fee is payable by you|There is nothing to pay]; [our office|the trustees] will [write again|send the documents] [by post|after {date}].",
      "[Please|Kindly] [bring|send] [a copy of this letter|your reference {ref}] to [our office in {city}|the appointment on {date}] [with photo ID|and we will explain the next steps]."),
    L("Yours faithfully,", "Yours sincerely,", "Respectfully,", "With regards,", "Sincerely,"),
    L("{sfirst} {slast}\n{title}, {firm}", "{sfirst} {slast}\n{firm}, {city}", "Barrister {sfirst} {slast}",
      "{firm}\nOffice of the {title}")}};

const int synth_n_styles = (int)(sizeof synth_styles / sizeof *synth_styles);

/* ---- word lists ---- */
const synth_list synth_lists[] = {
    {"first", L("James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
                "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "Karen",
                "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Sandra", "Mark", "Ashley", "Priya", "Emily", "Paul",
                "Donna", "Andrew", "Michelle", "Joshua", "Carol", "Kenji", "Amanda", "Kevin", "Melissa", "Brian",
                "Deborah", "George", "Stephanie", "Omar", "Rebecca", "Edward", "Sharon", "Ronald", "Laura", "Timothy",
                "Cynthia", "Jason", "Amy", "Jeffrey", "Angela", "Ryan", "Helen", "Jacob", "Anna", "Gary", "Brenda",
                "Nicholas", "Pamela", "Eric", "Nicole", "Wei", "Fatima", "Lars", "Ingrid")},
    {"last", L("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
               "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
               "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
               "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green",
               "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Okafor",
               "Schmidt", "Kowalski", "Tanaka", "Patel", "Novak", "Larsen", "Dubois", "Rossi", "Silva")},
    {"company", L("Northwind Traders", "Contoso Ltd", "Fabrikam Inc", "Tailspin Systems", "Adatum Corporation",
                  "Litware Group", "Proseware", "Wingtip Partners", "Lucerne Publishing", "Margie Consulting",
                  "Alpine Ski House", "Coho Vineyard", "Blue Yonder Labs", "Humongous Insurance", "Trey Research",
                  "Woodgrove Holdings", "Graphic Design Institute", "Southridge Video", "Relecloud", "VanArsdel")},
    {"bank", L("Woodgrove Bank", "First Harbor Bank", "Crestline Savings", "Union Meridian", "Lakeside Credit Union",
               "Summit National", "Pioneer Trust", "Greenfield Bank", "Atlas Federal", "Riverbend Bank",
               "Keystone Savings", "Northgate Bank")},
    {"courier", L("SwiftPost", "ParcelNet", "Expressline", "RoadRunner Logistics", "BlueBox Delivery", "QuickShip",
                  "Metro Couriers", "DirectDrop", "GlobalFreight", "CityLink Parcels")},
    {"shop", L("HomeGoods Online", "TechHaven", "BookNook", "GreenLeaf Garden", "StyleBox", "KitchenCraft",
               "PetPantry", "OutdoorGear Co", "ToyTown", "SoundWave Audio")},
    {"pub", L("The Weekly Ledger", "Morning Brief", "Tech Horizon", "Garden Notes", "The Civic Post", "Data Digest",
              "Kitchen Table", "Trail and Summit", "Market Watch Weekly", "The Reading Room")},
    {"firm", L("Okoro and Partners Chambers", "Whitmore Legal Associates", "Beaumont Trust Services",
               "Harrington Estate Solicitors", "Meridian Foundation", "Calder Grants Board", "Ashford Probate Office",
               "Kingsley Law Group", "Sterling Heritage Trust", "Aldridge and Finch Solicitors")},
    {"nobrand", L("mail")},
    {"team", L("IT", "HR", "Facilities", "Finance", "Security", "Payroll", "Operations", "Communications")},
    {"itemcorp", L("the email migration", "the new expense policy", "password rotation", "the office move",
                   "open enrollment", "the VPN upgrade", "the annual security training", "badge renewal",
                   "the printer replacement", "the holiday schedule", "timesheet changes", "the new intranet")},
    {"system", L("single sign-on", "the new HR portal", "cloud storage", "the ticketing system", "a new laptop fleet",
                 "the upgraded VPN", "shared calendars")},
    {"title", L("senior manager", "project lead", "director", "coordinator", "analyst", "attorney", "solicitor",
                "secretary", "administrator", "consultant", "chief editor", "accountant")},
    {"city", L("London", "Chicago", "Toronto", "Lagos", "Madrid", "Denver", "Austin", "Dublin", "Singapore", "Berlin",
               "Boston", "Seattle", "Sydney", "Mumbai", "Oslo", "Lisbon", "Accra", "Houston", "Phoenix", "Lyon",
               "Nairobi", "Manila", "Vienna", "Atlanta")},
    {"product", L("headphones", "a coffee grinder", "running shoes", "a phone case", "a desk lamp", "garden tools",
                  "a backpack", "books", "a blender", "a keyboard", "a winter jacket", "a camera lens")},
    {"topic", L("remote work", "energy prices", "home gardening", "electric cars", "city budgets", "data privacy",
                "sourdough baking", "trail running", "interest rates", "local elections", "AI tools", "housing",
                "school funding", "travel deals", "small business taxes", "birdwatching")},
    {"weekday", L("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")},
    {"month", L("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                "November", "December")},
    {"tld", L("top", "xyz", "info", "online", "site", "support", "click", "live")},
    {"phword", L("secure", "verify", "account", "login", "update", "support", "service", "confirm", "alert", "auth")},
    {"path", L("account", "help", "orders", "statements", "news", "settings", "support", "schedule", "docs", "track")},
    {"freemail", L("gmail.com", "outlook.com", "yahoo.com", "mail.com", "proton.me", "aol.com")},
    {NULL, NULL}};
