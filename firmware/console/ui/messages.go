package ui

import "fmt"

// Lang is a language of the console.
type Lang string

// The languages.
const (
	English Lang = "en"
	Chinese Lang = "zh" // Simplified Chinese
)

// ParseLang reads a language as the cluster or the command line gives it
// ("zh", "zh_CN", "zh-Hans", "en", ...); anything else is English.
func ParseLang(s string) Lang {
	if len(s) >= 2 && (s[:2] == "zh" || s[:2] == "ZH") {
		return Chinese
	}
	return English
}

// msg is a key of the catalog.
type msg int

// The catalog's keys; the zero msg means "no message".
const (
	mNoMsg msg = iota
	mOK
	mFail
	mWarn
	mUnknown
	mUp
	mDown
	mRunning
	mNone
	mYes
	mNo
	mCancelled
	mError
	mWithDetail
	mAuto
	mAdminMode
	mBootPXE
	mBootSlot
	mHost
	mRole
	mSchool
	mSerial
	mEnrolment
	mAttestation
	mCert
	mClock
	mUptime
	mCPU
	mMemory
	mDisk
	mGateway
	mCluster
	mNetwork
	mLog
	mEnrolNone
	mEnrolNoServer
	mEnrolContacting
	mEnrolPending
	mEnrolPendingID
	mEnrolApproved
	mEnrolRejected
	mEnrolError
	mAttestNone
	mAttestAttesting
	mAttestAccepted
	mAttestRefused
	mAttestError
	mCertExpired
	mCertIn
	mClockNotSynced
	mClockSynced
	mCPUText
	mUsage
	mDiskUsed
	mDiskFailing
	mNoDisk
	mRTT
	mDurDH
	mDurHM
	mDurMS
	mDurS
	mNoNIC
	mNoAddress
	mModeDHCP
	mModeStatic
	mChoiceDHCP
	mChoiceStatic
	mQRFailed
	mLevelInfo
	mLevelWarn
	mLevelError
	mPendingBanner
	mHelpStatus
	mHelpLang
	mHelpPIN
	mHelpMenu
	mHelpForm
	mHelpPending
	mHelpDiag
	mHelpLog
	mHelpSlots
	mHelpReset
	mHelpConfirm
	mPINTitle
	mNoPIN
	mNoPINHow
	mPINPrompt
	mPINLabel
	mPINLockedFor
	mPINPolicy
	mPINWrong
	mPINLocked
	mLockLoadErr
	mLockSaveErr
	mIdleLocked
	mASCIIOnly
	mMenuTitle
	mMenuNetwork
	mMenuServers
	mMenuReenrol
	mMenuRole
	mMenuDiag
	mMenuLog
	mMenuSlots
	mMenuReboot
	mMenuPowerOff
	mMenuReset
	mMenuSlotsNone
	mMenuNetPending
	mMenuRoleNow
	mNetTitle
	mFieldNIC
	mFieldMode
	mFieldAddr
	mFieldPrefix
	mFieldGateway
	mFieldDNS
	mFieldVLAN
	mHintNIC
	mHintMode
	mHintAddr
	mHintPrefix
	mHintGateway
	mHintDNS
	mHintVLAN
	mNetUnderTest
	mApplyTitle
	mApplyBody
	mNetSummary
	mApplyDone
	mGwShort
	mErrNoNIC
	mErrVLAN
	mErrAddrNeeded
	mErrAddr
	mErrPrefix
	mErrAddrUse
	mErrGateway
	mErrGatewayOut
	mErrGatewayKind
	mAttestWhy
	mEnrolWhy
	mErrDNS
	mErrDNSMany
	mErrHost
	mErrRoleEmpty
	mErrRoleName
	mErrRoleSame
	mServersTitle
	mFieldBoot
	mFieldCluster
	mHintBoot
	mHintCluster
	mServersNote
	mServersBody
	mServersDone
	mRoleTitle
	mFieldRole
	mHintRole
	mRoleNote
	mRoleChoices
	mRoleBody
	mRoleDone
	mPendingTitle
	mPendingApplying
	mPendingNone
	mPendingKept
	mPendingReverted
	mPendingCountdown
	mPendingHow
	mKeepTitle
	mKeepUnreachable
	mKeepDone
	mRevertDone
	mReenrolTitle
	mReenrolBody
	mReenrolDone
	mDiagTitle
	mDiagNone
	mDiagStarted
	mDiagPingGateway
	mDiagPingCluster
	mDiagDNS
	mDiagDHCP
	mDiagDisk
	mDiagTPM
	mLogTitle
	mLogPos
	mLogEmpty
	mSlotsTitle
	mSlotsPXE
	mSlotsBooted
	mSlotCol
	mVersionCol
	mStateCol
	mInstalledCol
	mSlotTrying
	mSlotEmpty
	mNoRollback
	mRollbackHow
	mRollbackTitle
	mRollbackBody
	mRollbackDone
	mRebootTitle
	mRebootBody
	mRebootDone
	mPowerOffTitle
	mPowerOffBody
	mPowerOffDone
	mResetTitle
	mResetWarn
	mResetPrompt
	mResetMismatch
	mResetNoSerial
	mResetDone
	msgCount
)

// text is one message in both languages.
type text struct{ en, zh string }

// catalog is every string the console shows, in English and Simplified
// Chinese. Format verbs must match between the two (TestCatalog checks).
// Never written to.
var catalog = [msgCount]text{
	mOK:               {"OK", "正常"},
	mFail:             {"FAIL", "故障"},
	mWarn:             {"WARN", "注意"},
	mUnknown:          {"unknown", "未知"},
	mUp:               {"UP", "已连接"},
	mDown:             {"DOWN", "未连接"},
	mRunning:          {"RUNNING", "进行中"},
	mNone:             {"none", "无"},
	mYes:              {"Yes", "确定"},
	mNo:               {"No", "取消"},
	mCancelled:        {"cancelled", "已取消"},
	mError:            {"Error: %s", "错误：%s"},
	mWithDetail:       {"%s: %s", "%s：%s"},
	mAuto:             {"automatic", "自动"},
	mAdminMode:        {"ADMIN", "管理模式"},
	mBootPXE:          {"PXE network boot", "网络启动（PXE）"},
	mBootSlot:         {"slot %s", "分区 %s"},
	mHost:             {"Host", "主机名"},
	mRole:             {"Role", "角色"},
	mSchool:           {"School", "学校"},
	mSerial:           {"Serial no.", "序列号"},
	mEnrolment:        {"Enrolment", "注册"},
	mAttestation:      {"Attestation", "认证"},
	mCert:             {"Certificate", "证书到期"},
	mClock:            {"Clock", "时钟"},
	mUptime:           {"Uptime", "运行时间"},
	mCPU:              {"CPU", "CPU"},
	mMemory:           {"Memory", "内存"},
	mDisk:             {"Disk", "磁盘"},
	mGateway:          {"Gateway", "网关"},
	mCluster:          {"Cluster", "集群"},
	mNetwork:          {"Network", "网络"},
	mLog:              {"Log", "日志"},
	mEnrolNone:        {"waiting for the network", "等待网络连接"},
	mEnrolNoServer:    {"no boot server known (onecloud.server=)", "没有启动服务器（onecloud.server=）"},
	mEnrolContacting:  {"contacting the boot server", "正在联系启动服务器"},
	mEnrolPending:     {"waiting for approval", "等待审批"},
	mEnrolPendingID:   {"waiting for approval (request %s)", "等待审批（申请号 %s）"},
	mEnrolApproved:    {"approved", "已批准"},
	mEnrolRejected:    {"rejected", "被拒绝"},
	mEnrolError:       {"error", "出错"},
	mAttestNone:       {"not attested yet", "尚未认证"},
	mAttestAttesting:  {"attesting to the cluster", "正在向集群认证"},
	mAttestAccepted:   {"accepted by the cluster", "集群认证通过"},
	mAttestRefused:    {"refused: %s", "被拒绝：%s"},
	mAttestError:      {"error: %s", "出错：%s"},
	mCertExpired:      {"expired on %s", "已于 %s 过期"},
	mCertIn:           {"%s (in %s)", "%s（剩余 %s）"},
	mClockNotSynced:   {"not synced: times may be wrong", "未同步，时间可能不准"},
	mClockSynced:      {"synced (%s, %s)", "已同步（%s，偏差 %s）"},
	mCPUText:          {"%d cores, %d%% busy", "%d 核，占用 %d%%"},
	mUsage:            {"%s of %s (%d%%)", "已用 %s，共 %s（%d%%）"},
	mDiskUsed:         {"%d%% used", "已用 %d%%"},
	mDiskFailing:      {"failing", "有故障"},
	mNoDisk:           {"none (diskless terminal)", "无（无盘终端）"},
	mRTT:              {" (%s)", "（%s）"},
	mDurDH:            {"%dd %dh", "%d天%d小时"},
	mDurHM:            {"%dh %dm", "%d小时%d分"},
	mDurMS:            {"%dm %ds", "%d分%d秒"},
	mDurS:             {"%ds", "%d秒"},
	mNoNIC:            {"no network interface found: check the NIC and its driver (onecloud.modules.load=)", "未找到网卡：请检查网卡及其驱动（onecloud.modules.load=）"},
	mNoAddress:        {"no address", "无地址"},
	mModeDHCP:         {"DHCP", "DHCP"},
	mModeStatic:       {"static", "静态"},
	mChoiceDHCP:       {"DHCP (automatic)", "DHCP（自动获取）"},
	mChoiceStatic:     {"static address", "静态地址"},
	mQRFailed:         {"no QR code: the serial number and MACs do not fit in one", "无法生成二维码：序列号和 MAC 地址太长"},
	mLevelInfo:        {"INFO", "信息"},
	mLevelWarn:        {"WARN", "警告"},
	mLevelError:       {"ERROR", "错误"},
	mPendingBanner:    {"Network change under test: reverts in %s unless confirmed in the admin menu", "网络设置测试中：%s后自动还原，请在管理菜单中确认"},
	mHelpStatus:       {"Enter admin menu  L language", "Enter 管理菜单  L 切换语言"},
	mHelpLang:         {"F2 中文", "F2 English"},
	mHelpPIN:          {"Enter OK  Backspace delete  Esc back", "Enter 确认  Backspace 删除  Esc 返回"},
	mHelpMenu:         {"↑↓ select  Enter open  1-9,0 jump  Esc lock and leave", "↑↓ 选择  Enter 打开  1-9、0 直达  Esc 锁定并退出"},
	mHelpForm:         {"Tab/↑↓ field  ←→/Space choose  Enter apply  Esc back", "Tab/↑↓ 切换  ←→/空格 选择  Enter 应用  Esc 返回"},
	mHelpPending:      {"Enter keep  R revert now  Esc back", "Enter 保留  R 立即还原  Esc 返回"},
	mHelpDiag:         {"R/Enter run diagnostics  Esc back", "R/Enter 运行诊断  Esc 返回"},
	mHelpLog:          {"↑↓ PgUp PgDn scroll  Home oldest  End newest  Esc back", "↑↓ PgUp PgDn 滚动  Home 最早  End 最新  Esc 返回"},
	mHelpSlots:        {"R roll back  Esc back", "R 回滚  Esc 返回"},
	mHelpReset:        {"type the serial number  Enter reset  Esc back", "输入序列号  Enter 重置  Esc 返回"},
	mHelpConfirm:      {"←→ choose  Y yes  N/Esc no  Enter the selected one", "←→ 选择  Y 确定  N/Esc 取消  Enter 执行所选"},
	mPINTitle:         {"Admin menu: console PIN", "管理菜单：控制台 PIN 码"},
	mNoPIN:            {"No console PIN is set, so the admin menu is closed.", "尚未设置控制台 PIN 码，管理菜单不可用。"},
	mNoPINHow:         {"Set a console PIN from the cluster; once the box has it, this screen opens the menu. Esc goes back to the status screen.", "请在集群上设置控制台 PIN 码，本机收到后即可打开管理菜单。按 Esc 返回状态页面。"},
	mPINPrompt:        {"Type the console PIN and press Enter.", "请输入控制台 PIN 码，然后按 Enter。"},
	mPINLabel:         {"PIN: ", "PIN 码："},
	mPINLockedFor:     {"Locked after %d wrong PINs: try again in %s.", "PIN 码连续错误 %d 次，已锁定：请%s后再试。"},
	mPINPolicy:        {"The PIN is set from the cluster. After %d wrong tries the console locks for %d s, and twice as long after each further round.", "PIN 码由集群设置。连续输错 %d 次后控制台锁定 %d 秒，之后每再错一轮，锁定时间加倍。"},
	mPINWrong:         {"wrong PIN (%d tries left)", "PIN 码错误（还可尝试 %d 次）"},
	mPINLocked:        {"wrong PIN: locked for %s", "PIN 码错误，已锁定%s"},
	mLockLoadErr:      {"cannot read the PIN lock state (%s); the last known state applies", "无法读取 PIN 锁定状态（%s），沿用上次的状态"},
	mLockSaveErr:      {"cannot save the PIN lock state (%s)", "无法保存 PIN 锁定状态（%s）"},
	mIdleLocked:       {"admin menu locked after %d minutes without a key", "%d 分钟无操作，管理菜单已锁定"},
	mASCIIOnly:        {"this terminal shows English only", "此终端只能显示英文"},
	mMenuTitle:        {"Admin menu", "管理菜单"},
	mMenuNetwork:      {"Network settings", "网络设置"},
	mMenuServers:      {"Boot server and cluster address", "启动服务器和集群地址"},
	mMenuReenrol:      {"Re-enrol", "重新注册"},
	mMenuRole:         {"Request a role change", "申请更改角色"},
	mMenuDiag:         {"Diagnostics", "诊断"},
	mMenuLog:          {"Log", "查看日志"},
	mMenuSlots:        {"Slots and rollback", "系统分区与回滚"},
	mMenuReboot:       {"Reboot", "重启"},
	mMenuPowerOff:     {"Power off", "关机"},
	mMenuReset:        {"Factory reset", "出厂重置"},
	mMenuSlotsNone:    {"PXE boot: no slots", "网络启动，无分区"},
	mMenuNetPending:   {"change under test, %s left", "设置测试中，剩余%s"},
	mMenuRoleNow:      {"now: %s", "当前：%s"},
	mNetTitle:         {"Network settings", "网络设置"},
	mFieldNIC:         {"Interface", "网卡"},
	mFieldMode:        {"Addressing", "地址方式"},
	mFieldAddr:        {"Address", "IP 地址"},
	mFieldPrefix:      {"Prefix or mask", "前缀长度或掩码"},
	mFieldGateway:     {"Gateway", "网关"},
	mFieldDNS:         {"DNS servers", "DNS 服务器"},
	mFieldVLAN:        {"VLAN", "VLAN"},
	mHintNIC:          {"←→ choose the network interface to set up.", "用 ←→ 选择要设置的网卡。"},
	mHintMode:         {"DHCP takes the address from the school network; static uses the fields below.", "DHCP 从学校网络自动获取地址；静态地址使用下面填写的设置。"},
	mHintAddr:         {"The box's own address, e.g. 10.20.1.15.", "本机的 IP 地址，例如 10.20.1.15。"},
	mHintPrefix:       {"A prefix length (24) or a mask (255.255.255.0).", "填写前缀长度（如 24）或子网掩码（如 255.255.255.0）。"},
	mHintGateway:      {"The router on this subnet, e.g. 10.20.1.1; empty for none.", "本网段的路由器，例如 10.20.1.1；没有可留空。"},
	mHintDNS:          {"Up to 3 addresses, separated by spaces.", "最多 3 个地址，用空格分隔。"},
	mHintVLAN:         {"VLAN id 1-4094; empty for an untagged port.", "VLAN 编号 1-4094；不打标签的端口请留空。"},
	mNetUnderTest:     {"The change is tested: if the cluster does not answer afterwards, the old settings come back by themselves after %d s unless you confirm.", "新设置先试用：如果之后连不上集群又没有确认，%d 秒后自动恢复原设置。"},
	mApplyTitle:       {"Apply network settings?", "应用网络设置？"},
	mApplyBody:        {"If the cluster does not answer, the old settings come back after %d s unless you confirm.", "如果连不上集群又没有确认，%d 秒后自动恢复原设置。"},
	mNetSummary:       {"%s: %s", "%s：%s"},
	mApplyDone:        {"network settings applied, under test", "网络设置已应用，正在测试"},
	mGwShort:          {"gw %s", "网关 %s"},
	mErrNoNIC:         {"no network interface to set up", "没有可设置的网卡"},
	mErrVLAN:          {"VLAN: %q is not a number from 1 to 4094 (leave it empty for none)", "VLAN：%q 不是 1-4094 之间的数字（不用 VLAN 请留空）"},
	mErrAddrNeeded:    {"Address: a static address needs one", "IP 地址：静态地址必须填写"},
	mErrAddr:          {"Address: %q is not an IP address", "IP 地址：%q 不是有效的 IP 地址"},
	mErrPrefix:        {"Prefix: %q is neither a length from 1 to %d nor a mask like 255.255.255.0", "前缀：%q 既不是 1-%d 的前缀长度，也不是 255.255.255.0 这样的掩码"},
	mErrAddrUse:       {"Address: %s is a network, broadcast or reserved address", "IP 地址：%s 是网络地址、广播地址或保留地址"},
	mErrGateway:       {"Gateway: %q is not an IP address", "网关：%q 不是有效的 IP 地址"},
	mErrGatewayKind:   {"Gateway: %s and the address %s are not both IPv4 or both IPv6", "网关：%s 与 IP 地址 %s 不是同一类型（IPv4/IPv6）"},
	mAttestWhy:        {"Attestation refused: %s", "认证被拒绝：%s"},
	mEnrolWhy:         {"Enrolment: %s", "注册：%s"},
	mErrGatewayOut:    {"Gateway: %s is not in the box's subnet %s", "网关：%s 不在本机网段 %s 内"},
	mErrDNS:           {"DNS: %q is not an IP address", "DNS：%q 不是有效的 IP 地址"},
	mErrDNSMany:       {"DNS: at most %d servers", "DNS：最多填写 %d 个服务器"},
	mErrHost:          {"%s: %q is not a host name or address (with an optional :port)", "%s：%q 不是有效的主机名或地址（可带 :端口）"},
	mErrRoleEmpty:     {"Role: type the role to request", "角色：请输入要申请的角色"},
	mErrRoleName:      {"Role: %q may only have lower-case letters, digits and '-'", "角色：%q 只能包含小写字母、数字和“-”"},
	mErrRoleSame:      {"Role: the box already is %s", "角色：本机已经是 %s"},
	mServersTitle:     {"Boot server and cluster address", "启动服务器和集群地址"},
	mFieldBoot:        {"Boot server", "启动服务器"},
	mFieldCluster:     {"Cluster address", "集群地址"},
	mHintBoot:         {"Host or address, with :port if not the default; empty to learn it from DHCP.", "主机名或地址，非默认端口请加 :端口；留空则从 DHCP 获取。"},
	mHintCluster:      {"The cluster API as host:port; empty to take it from the enrolment answer.", "集群 API 地址（主机:端口）；留空则使用注册应答中的地址。"},
	mServersNote:      {"The box uses the new addresses from its next enrolment and attestation on.", "本机从下次注册和认证起使用新地址。"},
	mServersBody:      {"Boot server: %s\\nCluster: %s", "启动服务器：%s\\n集群：%s"},
	mServersDone:      {"addresses saved", "地址已保存"},
	mRoleTitle:        {"Request a role change", "申请更改角色"},
	mFieldRole:        {"New role", "新角色"},
	mHintRole:         {"←→ choose a role, or type one.", "用 ←→ 选择角色，或直接输入。"},
	mRoleNote:         {"The cluster decides: once approved, the box restarts in its new role.", "由集群审批：批准后本机以新角色重新启动。"},
	mRoleChoices:      {"Roles the cluster offers: %s", "集群提供的角色：%s"},
	mRoleBody:         {"Ask the cluster to change this box from %s to %s?", "向集群申请把本机角色从 %s 改为 %s？"},
	mRoleDone:         {"role %s requested, waiting for the cluster", "已申请角色 %s，等待集群审批"},
	mPendingTitle:     {"Network change under test", "网络设置测试中"},
	mPendingApplying:  {"Applying the network change...", "正在应用网络设置……"},
	mPendingNone:      {"No network change is under test.", "当前没有正在测试的网络设置。"},
	mPendingKept:      {"kept: the new settings stay", "已确认，保留新设置"},
	mPendingReverted:  {"reverted: the previous settings are back", "已还原，恢复为原设置"},
	mPendingCountdown: {"The old settings come back by themselves in %s unless you keep these.", "如不确认，%s后自动恢复原设置。"},
	mPendingHow:       {"Check that the cluster answers (OK above), then press Enter to keep the new settings, or R to go back to the old ones now.", "确认上方集群显示“正常”后，按 Enter 保留新设置；按 R 立即恢复原设置。"},
	mKeepTitle:        {"Keep these settings?", "保留这些设置？"},
	mKeepUnreachable:  {"The cluster does not answer with these settings. Keep them anyway? The box may stay cut off from the cluster.", "在当前设置下集群没有响应。仍要保留吗？本机可能会一直连不上集群。"},
	mKeepDone:         {"network settings kept", "已保留网络设置"},
	mRevertDone:       {"going back to the previous network settings", "正在恢复原网络设置"},
	mReenrolTitle:     {"Re-enrol?", "重新注册？"},
	mReenrolBody:      {"The box forgets its enrolment and asks the boot server again; it may need approval before it works again.", "本机将清除注册信息并重新向启动服务器注册，可能需要再次审批后才能使用。"},
	mReenrolDone:      {"re-enrolment started", "已开始重新注册"},
	mDiagTitle:        {"Diagnostics", "诊断"},
	mDiagNone:         {"No results yet: press R to run the diagnostics.", "还没有结果：按 R 开始诊断。"},
	mDiagStarted:      {"diagnostics started", "诊断已开始"},
	mDiagPingGateway:  {"ping gateway", "Ping 网关"},
	mDiagPingCluster:  {"ping cluster", "Ping 集群"},
	mDiagDNS:          {"DNS lookup", "DNS 解析"},
	mDiagDHCP:         {"DHCP probe", "DHCP 探测"},
	mDiagDisk:         {"disk health", "磁盘健康"},
	mDiagTPM:          {"TPM self-test", "TPM 自检"},
	mLogTitle:         {"Log", "日志"},
	mLogPos:           {"lines %d-%d of %d", "第 %d-%d 行，共 %d 行"},
	mLogEmpty:         {"The log is empty.", "日志为空。"},
	mSlotsTitle:       {"Slots and rollback", "系统分区与回滚"},
	mSlotsPXE:         {"This box boots from the network (PXE): it has no slots to roll back to; the cluster decides what it boots.", "本机从网络启动（PXE），没有可回滚的系统分区；启动哪个版本由集群决定。"},
	mSlotsBooted:      {"Booted from slot %s", "当前从分区 %s 启动"},
	mSlotCol:          {"Slot", "分区"},
	mVersionCol:       {"Version", "版本"},
	mStateCol:         {"State", "状态"},
	mInstalledCol:     {"Installed", "安装时间"},
	mSlotTrying:       {"TRYING", "试运行"},
	mSlotEmpty:        {"empty", "空"},
	mNoRollback:       {"No previous slot to roll back to.", "没有可回滚的上一个分区。"},
	mRollbackHow:      {"Press R to roll back to slot %s (%s) and reboot.", "按 R 回滚到分区 %s（%s）并重启。"},
	mRollbackTitle:    {"Roll back?", "回滚？"},
	mRollbackBody:     {"Reboot into slot %s (%s), the previous firmware?", "重启并回滚到上一个分区 %s（%s）？"},
	mRollbackDone:     {"rolling back to slot %s", "正在回滚到分区 %s"},
	mRebootTitle:      {"Reboot?", "重启？"},
	mRebootBody:       {"The box restarts now; it is back in a minute or two.", "本机将立即重启，一两分钟后恢复。"},
	mRebootDone:       {"rebooting", "正在重启"},
	mPowerOffTitle:    {"Power off?", "关机？"},
	mPowerOffBody:     {"The box switches off; someone must press its power button to start it again.", "本机将关机，之后需要有人按电源键才能再次开机。"},
	mPowerOffDone:     {"powering off", "正在关机"},
	mResetTitle:       {"Factory reset", "出厂重置"},
	mResetWarn:        {"Factory reset erases this box's local data, network settings, enrolment and certificate. It then enrols again as a new box.", "出厂重置会清除本机的本地数据、网络设置、注册信息和证书，之后本机将作为新设备重新注册。"},
	mResetPrompt:      {"To confirm, type the serial number %s and press Enter:", "确认请输入序列号 %s，然后按 Enter："},
	mResetMismatch:    {"that is not this box's serial number; nothing was reset", "序列号不符，未执行重置"},
	mResetNoSerial:    {"factory reset needs the serial number, which this box does not report; reset it from the cluster", "本机没有序列号，无法在此重置；请在集群上操作"},
	mResetDone:        {"factory reset started", "出厂重置已开始"},
}

// t is key in the model's language.
func (m *Model) t(key msg) string {
	if key <= mNoMsg || key >= msgCount {
		return "?"
	}
	if m.lang == Chinese {
		return catalog[key].zh
	}
	return catalog[key].en
}

// tf formats key with args; an arg that is itself a msg is translated.
func (m *Model) tf(key msg, args ...any) string {
	if len(args) == 0 {
		return m.t(key)
	}
	out := make([]any, len(args)) // the caller's args are kept to redraw in another language
	for i, a := range args {
		if k, ok := a.(msg); ok {
			a = m.t(k)
		}
		out[i] = a
	}
	return fmt.Sprintf(m.t(key), out...)
}
